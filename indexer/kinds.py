"""What kind of media a file is, by its name: the one table of extensions.

The walk uses it to choose what to index, the metadata stage to choose
what to parse, the artwork code to spot folder covers.
"""

from __future__ import annotations

EXTENSIONS = {
    "audio": (
        "mp3 mp2 mpga m4a m4b m4p aac adts flac ogg oga opus spx wav wave aif aiff aifc wma "
        "ape wv mpc mp+ tta ofr ofs dsf dff mid midi kar caf ac3 dts mka au snd amr"
    ),
    "video": (
        "mp4 m4v mov mkv webm avi wmv asf mpg mpeg m2ts mts ts vob ogv flv 3gp 3g2 divx rm rmvb f4v"
    ),
    "image": "jpg jpeg png gif webp bmp tif tiff heic heif avif jxl",
}
KIND_OF_EXTENSION = {ext: kind for kind, exts in EXTENSIONS.items() for ext in exts.split()}


def kind_of(name: str) -> str:
    """The media kind of a file name by its extension (the walk inlines this)."""
    dot = name.rfind(".")
    return KIND_OF_EXTENSION.get(name[dot + 1:].lower(), "other") if dot > 0 else "other"


COVER_STEMS = ("cover", "folder", "front")


def extension(name: str) -> str:
    dot = name.rfind(".")
    return name[dot + 1:].lower() if dot > 0 else ""


def taggable(kind: str, name: str) -> bool:
    """Whether a file gets a `media` row: audio, video, and images but folder covers
    (whose picture goes to the artwork cache instead)."""
    return kind in ("audio", "video") or (kind == "image" and not is_cover(kind, name))


def is_cover(kind: str, name: str) -> bool:
    """A folder image: cover.*, folder.*, front.*, albumart*."""
    if kind != "image":
        return False
    stem = name.rsplit("/", 1)[-1].rsplit(".", 1)[0].lower()
    return stem in COVER_STEMS or stem.startswith("albumart")
