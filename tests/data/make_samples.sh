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
ls -l
