"""Generator layers that earlier releases offered as presets. Model files made with them name
these presets in their cards; the app no longer offers them but still loads and runs the files."""

from mri_style_app.cyclegan.presets import GeneratorConfig

EARLIER = {
    "lite-intensity": GeneratorConfig(ngf=8, n_blocks=6, intensity_path=16),
    "local": GeneratorConfig(ngf=0, n_blocks=0, intensity_path=16, intensity_depth=4),
    "voxel": GeneratorConfig(ngf=0, n_blocks=0, intensity_path=32, intensity_depth=1),
    "voxel-headroom": GeneratorConfig(ngf=0, n_blocks=0, intensity_path=32, intensity_depth=1, output_top=1.1),
    "lite-resize": GeneratorConfig(ngf=8, n_blocks=6, upsample="resize"),
    "tiny": GeneratorConfig(ngf=16, n_blocks=6),
    "small": GeneratorConfig(ngf=32, n_blocks=6),
}


def card_naming(preset: str, directions, normalisation=None) -> dict:
    """A card as an earlier release wrote it for `preset`: the layers, under that name."""
    from mri_style_app.cyclegan import checkpoint as model_files

    card = model_files.make_card(EARLIER[preset], directions, normalisation)
    card["architecture"]["preset"] = preset
    return card
