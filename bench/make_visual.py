"""Make a deterministic library of videos and photos for benchmarks, and big films.

* `--videos N`: N small real videos (PyAV's bundled encoders: 128x72, 5 frames, an
  AAC track and a SubRip track), named as people name them: 60% TV episodes
  (`Show NN/Season NN/Show.NN.S01E05.1080p.mkv`), 20% films (`Film NNN (Year)/Film
  NNN (Year).mkv`), 20% phone clips (`Camera/Year/VID_YYYYMMDD_HHMMSS.mp4`); mostly
  MKV, with MP4, AVI, TS and WebM. Every file's content differs (its title tag).
* `--photos N`: N real JPEG photos (320x240) with a camera's EXIF (a distinct time
  and place each), in `Photos/Year/Month/IMG_NNNNN.jpg`; one in 20 a PNG without
  EXIF, one in 50 a HEIC.
* `--film-gb G`: two films of G GiB each, a 1280x720 H.264 stream of noise (so every
  frame is big, as a film's are) with AAC audio, as MKV and as MP4 (its index, the
  moov, at the end as a muxer leaves it): `films/Big Film (2020)/...`.

A marker file records the parameters, as make_library.py does: the same ones again
do nothing, others remake DEST (only a DEST this script made is ever deleted).

    python bench/make_visual.py /tmp/visual --videos 2000 --photos 10000 [--film-gb 1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
from pathlib import Path

import av
import pillow_heif
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from videos import make_video  # noqa: E402  (the tests' maker: the same real files)

MARKER = ".bench-visual.json"
GENERATOR_VERSION = 1


def ensure(dest: Path, videos: int, photos: int, film_gb: float, seed: int = 1) -> dict:
    params = {"videos": videos, "photos": photos, "film_gb": film_gb, "seed": seed,
              "version": GENERATOR_VERSION}
    marker = dest / MARKER
    if marker.exists() and json.loads(marker.read_text()).get("params") == params:
        return json.loads(marker.read_text())
    if dest.exists():
        if not marker.exists() and any(dest.iterdir()):
            raise SystemExit(f"{dest} is not empty and was not made by make_visual.py")
        shutil.rmtree(dest)
    rng = random.Random(seed)
    facts = {"params": params, "videos": make_videos(dest / "videos", videos, rng),
             "photos": make_photos(dest / "photos", photos, rng),
             "films": make_films(dest / "films", film_gb) if film_gb else []}
    marker.write_text(json.dumps(facts))
    return facts


CONTAINERS = ("mkv",) * 6 + ("mp4", "mp4", "avi", "ts", "webm")
CODEC_OF = {"mkv": "libx264", "mp4": "libx264", "ts": "libx264", "avi": "mpeg4", "webm": "libvpx"}
AUDIO_OF = {"mkv": "aac", "mp4": "aac", "ts": "aac", "avi": "mp2", "webm": "libopus"}


def make_videos(root: Path, count: int, rng: random.Random) -> dict:
    names = []
    episodes = count * 6 // 10
    for i in range(episodes):
        show, season, episode = i // 30, 1 + i // 15 % 2, 1 + i % 15
        names.append(f"Show {show:02d}/Season {season:02d}/"
                     f"Show.{show:02d}.S{season:02d}E{episode:02d}.1080p")
    films = count * 2 // 10
    for i in range(films):
        year = 1950 + rng.randrange(75)
        names.append(f"Film {i:03d} ({year})/Film {i:03d} ({year})")
    for i in range(count - episodes - films):
        year = 2015 + i % 10
        names.append(f"Camera/{year}/VID_{year}{1 + i % 12:02d}{1 + i % 28:02d}_"
                     f"{rng.randrange(240000):06d}")
    total = 0
    for index, name in enumerate(names):
        extension = "mp4" if name.startswith("Camera/") else rng.choice(CONTAINERS)
        path = make_video(root / f"{name}.{extension}", codec=CODEC_OF[extension],
                          size=(128, 72), frames=5, title=f"Clip {index}",
                          audio=((AUDIO_OF[extension], "stereo", "eng", True),),
                          subtitles=(("eng", False, False),) if extension == "mkv" else ())
        total += path.stat().st_size
    return {"files": len(names), "bytes": total}


def camera_exif(rng: random.Random, index: int) -> bytes:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "Canon", "EOS R5", 1 + index % 8
    details = exif.get_ifd(0x8769)
    details[0x9003] = (f"{2015 + index % 10}:{1 + index % 12:02d}:{1 + index % 28:02d} "
                       f"{index % 24:02d}:{index % 60:02d}:{index * 7 % 60:02d}")
    details[0x9011] = "+01:00"
    details[0x8827], details[0x829A] = 100 * (1 + index % 32), IFDRational(1, 250)
    details[0x829D], details[0x920A] = IFDRational(28, 10), IFDRational(35, 1)
    details[0xA434] = "RF24-70mm F2.8 L IS USM"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (IFDRational(rng.randrange(80)), IFDRational(rng.randrange(60)),
                           IFDRational(rng.randrange(6000), 100))
    gps[3], gps[4] = "E", (IFDRational(rng.randrange(180)), IFDRational(rng.randrange(60)),
                           IFDRational(rng.randrange(6000), 100))
    return exif.tobytes()


def make_photos(root: Path, count: int, rng: random.Random) -> dict:
    base = Image.linear_gradient("L").resize((320, 240)).convert("RGB")
    total = 0
    for index in range(count):
        folder = root / f"{2015 + index % 10}" / f"{1 + index % 12:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        picture = base.point(lambda v, shift=index % 200: (v + shift) % 256)
        if index % 20 == 19:
            path = folder / f"IMG_{index:05d}.png"
            picture.save(path)
        elif index % 50 == 7:
            path = folder / f"IMG_{index:05d}.heic"
            pillow_heif.from_pillow(picture).save(str(path), quality=30,
                                                  exif=camera_exif(rng, index))
        else:
            path = folder / f"IMG_{index:05d}.jpg"
            picture.save(path, quality=80, exif=camera_exif(rng, index))
        total += path.stat().st_size
    return {"files": count, "bytes": total}


def make_films(root: Path, gib: float) -> list[str]:
    """One film of `gib` GiB as MKV, then the same packets remuxed into an MP4."""
    folder = root / "Big Film (2020)"
    folder.mkdir(parents=True)
    mkv, mp4 = folder / "Big Film (2020).mkv", folder / "Big Film (2020) - copy.mp4"
    target, noise = int(gib * (1 << 30)), random.Random(5)
    with av.open(str(mkv), "w") as out:
        video = out.add_stream("libx264", rate=24, options={"preset": "ultrafast", "crf": "0"})
        video.width, video.height, video.pix_fmt = 1280, 720, "yuv420p"
        sound = out.add_stream("aac", rate=48000, layout="stereo")
        index = 0
        while out_size(mkv) < target:
            frame = av.VideoFrame(1280, 720, "yuv420p")
            for plane in frame.planes:
                plane.update(noise.randbytes(plane.buffer_size))
            frame.pts = index
            out.mux(video.encode(frame))
            samples = 2000  # 1/24 s of silence
            audio = av.AudioFrame(format="fltp", layout="stereo", samples=samples)
            for plane in audio.planes:
                plane.update(bytes(plane.buffer_size))
            audio.sample_rate, audio.pts = 48000, index * samples
            out.mux(sound.encode(audio))
            index += 1
        out.mux(video.encode())
        out.mux(sound.encode())
    with av.open(str(mkv)) as source, av.open(str(mp4), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in source.streams}
        for packet in source.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    return [str(mkv), str(mp4)]


def out_size(path: Path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dest", type=Path)
    parser.add_argument("--videos", type=int, default=2000)
    parser.add_argument("--photos", type=int, default=10000)
    parser.add_argument("--film-gb", type=float, default=0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(ensure(args.dest, args.videos, args.photos, args.film_gb, args.seed)))


if __name__ == "__main__":
    main()
