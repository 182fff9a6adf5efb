"""The samples ffmpeg cannot make, written with plain Python and mutagen.

Run from this folder after the ffmpeg part of make_samples.sh (which calls it);
every file it writes is committed, so the tests never need to run it.

- Monkey's Audio, Musepack (SV8), OptimFROG: header-only files. Each holds the
  format's header exactly as its specification lays it out and mutagen's parser
  reads it (mutagen/monkeysaudio.py, musepack.py, optimfrog.py), claiming one
  second of 44.1 kHz mono, but no audio frames: a decoder would reject them, a tag
  reader (which never decodes) must not. Then an APEv2 tag, written by mutagen.
- DSF and DSDIFF: complete files of 0.01 s of DSD64 idle pattern (0x69), one
  second would be 350 KB; tagged with ID3 by mutagen.
- tone.mid: one second of a Standard MIDI File written byte by byte.
- id3v22.mp3, id3v1.mp3: the MPEG frames of id3v24.mp3 behind an ID3v2.2 tag
  written by hand (mutagen cannot write v2.2), or followed by an ID3v1 tag only.
- id3.wav: PCM from the standard library's `wave` module, with an ID3 chunk and
  no RIFF INFO.
- tags mutagen adds to ffmpeg's files: ID3 on tone.tta (ffmpeg writes only APEv2,
  which mutagen's TrueAudio does not read), MP4 tags on clip.mov, cover.jpg
  embedded in art.mp3 and art.flac as their front cover.
- zero_tickdiv.mid, a file that makes mutagen raise an exception that is not a
  MutagenError. Found by reading mutagen/smf.py: `_read_midi_length` divides by
  the header's ticks-per-quarter-note (`deltasum / float(tickdiv)`) and checks
  only its top bit, so a header with tickdiv 0 raises ZeroDivisionError out of
  mutagen.File (checked with mutagen 1.48.1).

Running it twice gives the same files: what it writes is written whole, what it
adds to ffmpeg's files replaces what it added before.
"""

from __future__ import annotations

import io
import struct
import wave
from pathlib import Path

from mutagen.apev2 import APEv2
from mutagen.dsdiff import DSDIFF
from mutagen.dsf import DSF
from mutagen.flac import FLAC, Picture
from mutagen.id3 import (APIC, ID3, TALB, TCOM, TCON, TDRC, TIT2, TPE1, TPE2, TPOS, TRCK,
                         PictureType)
from mutagen.mp4 import MP4
from mutagen.trueaudio import TrueAudio
from mutagen.wave import WAVE

HERE = Path(__file__).parent
COVER = (HERE / "cover.jpg").read_bytes()


def ape_tags(path: Path, title: str, artist: str, album: str, track: int) -> None:
    tags = APEv2()
    for key, value in (("Title", title), ("Artist", artist), ("Album", album),
                       ("Album Artist", artist), ("Track", f"{track}/12"), ("Disc", "1/2"),
                       ("Year", "2001"), ("Genre", "Rock"), ("Composer", "Composer")):
        tags[key] = value
    tags.save(path)


def id3_frames(title: str, artist: str, album: str, track: int) -> list:
    return [TIT2(encoding=3, text=title), TPE1(encoding=3, text=artist),
            TALB(encoding=3, text=album), TPE2(encoding=3, text=artist),
            TRCK(encoding=3, text=f"{track}/12"), TPOS(encoding=3, text="1/2"),
            TDRC(encoding=3, text="2001"), TCON(encoding=3, text="Rock"),
            TCOM(encoding=3, text="Composer")]


# --- header-only lossless formats, APEv2-tagged

def monkeys_audio() -> bytes:
    """APE 3.99: a 52-byte descriptor, then the 24-byte header mutagen reads at 56..76."""
    descriptor = b"MAC " + struct.pack("<HHIIIIIII", 3990, 0, 52, 24, 0, 0, 0, 0, 0) + bytes(16)
    blocks_per_frame, final_frame_blocks, total_frames = 73728 * 4, 44100, 1  # 44100 samples
    header = struct.pack("<HHIIIHHI", 2000, 0, blocks_per_frame, final_frame_blocks,
                         total_frames, 16, 1, 44100)
    return descriptor + header


def sv8_int(value: int) -> bytes:
    """Musepack SV8 variable-length integer: 7 bits a byte, high bit = more follow."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def sv8_packet(key: bytes, payload: bytes) -> bytes:
    size = len(key) + 1 + len(payload)  # a size under 128 takes one byte
    return key + sv8_int(size) + payload


def musepack() -> bytes:
    """SV8: the stream header (44100 samples, rate index 0 = 44.1 kHz, mono), the
    ReplayGain packet mutagen requires, and the stream end."""
    stream_header = (bytes(4) + b"\x08" + sv8_int(44100) + sv8_int(0)
                     + bytes([0 << 5, (1 - 1) << 4]))
    replay_gain = b"\x01" + bytes(8)
    return (b"MPCK" + sv8_packet(b"SH", stream_header) + sv8_packet(b"RG", replay_gain)
            + sv8_packet(b"SE", b""))


def optimfrog() -> bytes:
    """OFR: 44100 samples (all channels), sample type 2 = 16-bit, channels - 1 = 0."""
    header = b"OFR " + struct.pack("<IIHBBIHB", 15, 44100, 0, 2, 0, 44100, 0x0F0, 0)
    return header + bytes(76 - len(header))


# --- DSD

DSD_RATE = 2822400
DSD_BYTES = DSD_RATE // 100 // 8  # 0.01 s of one channel, one bit a sample


def dsf() -> bytes:
    """DSD chunk, fmt chunk, then one 4096-byte block of the single channel."""
    block = bytes([0x69]) * DSD_BYTES + bytes(4096 - DSD_BYTES)
    data = b"data" + struct.pack("<Q", 12 + len(block)) + block
    fmt = b"fmt " + struct.pack("<QIIIIIIQI", 52, 1, 0, 1, 1, DSD_RATE, 1, DSD_BYTES * 8, 4096) \
        + bytes(4)
    total = 28 + len(fmt) + len(data)
    return b"DSD " + struct.pack("<QQQ", 28, total, 0) + fmt + data


def dff_chunk(key: bytes, body: bytes) -> bytes:
    return key + struct.pack(">Q", len(body)) + body + bytes(len(body) & 1)


def dsdiff() -> bytes:
    prop = b"SND " + dff_chunk(b"FS  ", struct.pack(">I", DSD_RATE)) \
        + dff_chunk(b"CHNL", struct.pack(">H", 1) + b"C   ") \
        + dff_chunk(b"CMPR", b"DSD " + bytes([14]) + b"not compressed" + b"\0")
    body = b"DSD " + dff_chunk(b"FVER", struct.pack(">I", 0x01050000)) \
        + dff_chunk(b"PROP", prop) + dff_chunk(b"DSD ", bytes([0x69]) * DSD_BYTES)
    return b"FRM8" + struct.pack(">Q", len(body)) + body


# --- MIDI

def midi(tickdiv: int) -> bytes:
    """Format 0, one track: tempo 500000 us a quarter, a note held 2 quarters = 1 s
    at 96 ticks a quarter."""
    events = (b"\x00\xff\x03\x09Tone_MIDI"              # track name
              + b"\x00\xff\x51\x03\x07\xa1\x20"          # tempo: 500000 us a quarter
              + b"\x00\x90\x45\x40"                      # note on, A4
              + b"\x81\x40\x80\x45\x40"                  # 192 ticks later: note off
              + b"\x00\xff\x2f\x00")                     # end of track
    return (b"MThd" + struct.pack(">IHHH", 6, 0, 1, tickdiv)
            + b"MTrk" + struct.pack(">I", len(events)) + events)


# --- MP3 tag versions

def mpeg_frames() -> bytes:
    """The audio of id3v24.mp3 without its ID3v2 tag."""
    data = (HERE / "id3v24.mp3").read_bytes()
    size = 0
    for byte in data[6:10]:  # syncsafe: 7 bits a byte
        size = (size << 7) | byte
    return data[10 + size:]


def id3v22_tag() -> bytes:
    """ID3v2.2: 3-letter frame ids and 3-byte sizes; text frames in ISO-8859-1."""
    frames = b""
    for frame_id, text in ((b"TT2", "Tone_MP3_v22"), (b"TP1", "Artist_A"), (b"TAL", "Album_One"),
                           (b"TP2", "Artist_A"), (b"TRK", "3/12"), (b"TPA", "1/2"),
                           (b"TYE", "2001"), (b"TCO", "(17)"), (b"TCM", "Composer")):
        body = b"\x00" + text.encode("latin-1")
        frames += frame_id + len(body).to_bytes(3, "big") + body
    size = len(frames)
    syncsafe = bytes((size >> shift) & 0x7F for shift in (21, 14, 7, 0))
    return b"ID3\x02\x00\x00" + syncsafe + frames


def id3v1_tag() -> bytes:
    """ID3v1.1: 30-byte fields, a track byte after a zero, genre 17 = Rock."""
    def field(text: str, size: int) -> bytes:
        return text.encode("latin-1").ljust(size, b"\0")
    return (b"TAG" + field("Tone_MP3_v1", 30) + field("Artist_A", 30) + field("Album_One", 30)
            + b"2001" + field("", 28) + b"\0" + bytes([4]) + bytes([17]))


# --- PCM with an ID3 chunk

def wav_pcm() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(1)
        writer.setframerate(8000)
        writer.writeframes(b"\x80" * 8000)  # one second of 8-bit silence
    return out.getvalue()


# --- writing

def write(name: str, data: bytes) -> Path:
    path = HERE / name
    path.write_bytes(data)
    return path


def embed_cover_mp3(path: Path) -> None:
    tags = ID3(path)
    tags.delall("APIC")
    tags.add(APIC(encoding=3, mime="image/jpeg", type=PictureType.COVER_FRONT, desc="Cover",
                  data=COVER))
    tags.save(path, v2_version=4)


def embed_cover_flac(path: Path) -> None:
    audio = FLAC(path)
    audio.clear_pictures()
    picture = Picture()
    picture.type, picture.mime, picture.desc, picture.data = 3, "image/jpeg", "Cover", COVER
    picture.width, picture.height, picture.depth = 64, 64, 24
    audio.add_picture(picture)
    audio.save(padding=lambda info: 0)  # ffmpeg's 8 KiB of padding: not needed here


def add_id3(audio, title: str, artist: str, album: str, track: int) -> None:
    """Tag a file whose format keeps ID3 where mutagen's class for it knows (a chunk of
    its own for DSF, DSDIFF and WAVE; in front for TrueAudio)."""
    if audio.tags is None:
        audio.add_tags()
    audio.tags.clear()
    for frame in id3_frames(title, artist, album, track):
        audio.tags.add(frame)
    audio.save()


def main() -> None:
    ape_tags(write("tone.ape", monkeys_audio()), "Tone_APE", "Artist_K", "Album_Lossless", 1)
    ape_tags(write("tone.mpc", musepack()), "Tone_MPC", "Artist_K", "Album_Lossless", 2)
    ape_tags(write("tone.ofr", optimfrog()), "Tone_OFR", "Artist_K", "Album_Lossless", 3)
    add_id3(DSF(write("tone.dsf", dsf())), "Tone_DSF", "Artist_L", "Album_DSD", 1)
    add_id3(DSDIFF(write("tone.dff", dsdiff())), "Tone_DFF", "Artist_L", "Album_DSD", 2)
    add_id3(WAVE(write("id3.wav", wav_pcm())), "Tone_WAV_ID3", "Artist_D", "Album_Four", 9)
    add_id3(TrueAudio(HERE / "tone.tta"), "Tone_TTA", "Artist_F", "Album_Six", 11)
    write("tone.mid", midi(96))
    write("zero_tickdiv.mid", midi(0))
    write("id3v22.mp3", id3v22_tag() + mpeg_frames())
    write("id3v1.mp3", mpeg_frames() + id3v1_tag())
    mov = MP4(HERE / "clip.mov")
    if mov.tags is None:
        mov.add_tags()
    mov.tags["\xa9nam"], mov.tags["\xa9ART"] = ["Clip_MOV"], ["Artist_M"]
    mov.save()
    embed_cover_mp3(HERE / "art.mp3")
    embed_cover_flac(HERE / "art.flac")


if __name__ == "__main__":
    main()
