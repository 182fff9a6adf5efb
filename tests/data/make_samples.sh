#!/bin/sh
# How the sample media in this folder were made (Debian: apt-get install ffmpeg).
# Each is one second of a sine tone with known tags; tests assert those tags.
# Run from this folder. The files are committed, so tests never need ffmpeg.
set -eu
tone="-f lavfi -i sine=frequency=440:duration=1:sample_rate=44100"
tags() {  # title artist album track
    echo "-metadata title=$1 -metadata artist=$2 -metadata album=$3 -metadata album_artist=$2 \
          -metadata track=$4/12 -metadata disc=1/2 -metadata date=2001 -metadata genre=Rock \
          -metadata composer=Composer"
}
ff() { ffmpeg -hide_banner -loglevel error -y "$@"; }

ff $tone -ac 1 -c:a libmp3lame -b:a 32k -id3v2_version 3 $(tags "Tone_MP3_v23" "Artist_A" "Album_One" 1) id3v23.mp3
ff $tone -ac 1 -c:a libmp3lame -b:a 32k -id3v2_version 4 $(tags "Tone_MP3_v24" "Artist_A" "Album_One" 2) id3v24.mp3
ff $tone -ac 1 -c:a flac $(tags "Tone_FLAC" "Artist_B" "Album_Two" 3) tone.flac
ff $tone -ac 1 -c:a libvorbis -q:a 0 $(tags "Tone_Vorbis" "Artist_B" "Album_Two" 4) tone.ogg
ff $tone -ac 1 -c:a libopus -b:a 16k $(tags "Tone_Opus" "Artist_C" "Album_Three" 5) tone.opus
ff $tone -ac 1 -c:a aac -b:a 32k $(tags "Tone_M4A" "Artist_C" "Album_Three" 6) tone.m4a
ff $tone -ac 1 -ar 8000 -c:a pcm_s16le $(tags "Tone_WAV" "Artist_D" "Album_Four" 7) tone.wav
ff $tone -ac 1 -ar 8000 -c:a pcm_s16be -write_id3v2 1 $(tags "Tone_AIFF" "Artist_D" "Album_Four" 8) tone.aiff
ff $tone -ac 1 -c:a wmav2 -b:a 32k $(tags "Tone_WMA" "Artist_E" "Album_Five" 9) tone.wma
ff -f lavfi -i color=c=blue:s=64x64 -frames:v 1 cover.jpg
ff -f lavfi -i color=c=red:s=32x32 -frames:v 1 cover.png
ff -f lavfi -i testsrc=duration=1:size=64x48:rate=5 -c:v libx264 -pix_fmt yuv420p -metadata title=Clip clip.mp4

# More formats for tests/test_metadata.py, 8 kHz where the codec allows, to stay a few KB.
# The wv and tta muxers write APEv2 tags; make_crafted.py adds ID3 to tone.tta (mutagen's
# TrueAudio reads only ID3) and MP4 tags to clip.mov (the mov muxer writes none mutagen reads).
ff $tone -ac 1 -ar 8000 -c:a wavpack $(tags "Tone_WavPack" "Artist_F" "Album_Six" 10) tone.wv
ff $tone -ac 1 -ar 8000 -c:a tta $(tags "Tone_TTA" "Artist_F" "Album_Six" 11) tone.tta
ff $tone -ac 1 -ar 8000 -c:a flac -f ogg $(tags "Tone_OggFLAC" "Artist_B" "Album_Two" 12) tone.oga
ff $tone -ac 1 -ar 8000 -c:a libspeex $(tags "Tone_Speex" "Artist_G" "Album_Seven" 1) tone.spx
ff $tone -ac 1 -c:a aac -b:a 16k tone.aac  # ADTS: no tags (mutagen's AAC reads none)
# ADTS with an ID3v2 tag in front, as podcasts and radio rips have
ff $tone -ac 1 -c:a aac -b:a 16k -write_id3v2 1 -metadata title=Tone_AAC_ID3 -metadata artist=Artist_I id3.aac
ff $tone -ac 1 -ar 8000 -c:a alac $(tags "Tone_ALAC" "Artist_C" "Album_Three" 7) alac.m4a
ff $tone -ac 1 -c:a aac -b:a 16k $(tags "Tone_M4B" "Artist_H" "Album_Book" 1) tone.m4b
ff -f lavfi -i testsrc=duration=1:size=32x24:rate=2 -c:v libx264 -pix_fmt yuv420p clip.mov
ff -f lavfi -i testsrc=duration=1:size=32x24:rate=2 -c:v libx264 -pix_fmt yuv420p -metadata title=Clip_M4V clip.m4v
# the bases of art.mp3 and art.flac: make_crafted.py embeds cover.jpg in them
ff $tone -ac 1 -c:a libmp3lame -b:a 8k -ar 8000 -id3v2_version 4 $(tags "Tone_Art_MP3" "Artist_J" "Album_Art" 1) art.mp3
ff $tone -ac 1 -ar 8000 -c:a flac $(tags "Tone_Art_FLAC" "Artist_J" "Album_Art" 2) art.flac

# The formats ffmpeg cannot write, tags it cannot write, and the broken file: pure Python.
"${PYTHON:-../../.venv/bin/python}" make_crafted.py
ls -l
