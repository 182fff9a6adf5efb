"""The catalogue's views as they are now: part of the schema media servers read.

Views hold no data, so a migration that changes one runs `recreate`, which drops
every view named here and creates them anew; schema.py's V2 keeps their first
definitions, as history.

Declared types: docs/schema.md gives each view column a type, and `PRAGMA
table_info` (which Datasette and typed readers use) must say the same. SQLite
3.40 declares a view column's type only when it is a column, or a subquery's
column, of a table; 3.41 and later also declare a CAST, by its affinity's name
(`INT`, not `INTEGER`). So each TEXT column computed here is made a column of a
subquery (`coalesce(a, b)` becomes a UNION ALL of a and b), which both declare
as TEXT. A count can be no table's column: `album_artwork.tracks` is declared
`INT` by SQLite 3.41 and later, nothing by 3.40 (docs/schema.md says so).

Timed by bench/views.py on a catalogue of 50,000 tracks (docs/benchmarks.md).
V2's `album_artwork` looked for each album's cover with a scan of `media`
(15 s); here that is a walk of the index `media_album_key` in track order,
which stops at the first track with a cover (0.08 s). `tracks` stays a plain join
that SQLite flattens into the query that reads it, so `SELECT * FROM tracks
WHERE id = ?` is one lookup.
"""

from __future__ import annotations

import re
import sqlite3

VIEWS = """
-- The front cover of each file: its own embedded front cover, else any embedded
-- picture, else its folder's cover image (if that image is still there, unchanged).
CREATE VIEW file_cover AS
SELECT f.id AS file_id,
       (SELECT artwork_hash FROM (
            SELECT a.artwork_hash, 0 AS folder, a.picture_type <> 3 AS other, 0 AS image
            FROM file_artwork a WHERE a.file_id = f.id
            UNION ALL
            SELECT d.artwork_hash, 1, 0, d.image_file_id
            FROM folder_artwork d JOIN files i ON i.id = d.image_file_id
            WHERE d.dir = f.dir AND i.status = 'present' AND i.tags_hash IS i.hash)
        ORDER BY folder, other, image, artwork_hash LIMIT 1) AS artwork_hash
FROM files f;

-- Present audio and video files with their tags: the table to point sqlite3 or Datasette
-- at. Photos have their own view.
CREATE VIEW tracks AS
SELECT f.id, f.path, f.dir, f.kind, f.size, f.hash, f.first_seen, f.updated_at,
       m.title, m.artist, m.album, m.album_artist, m.track_no, m.track_total, m.disc_no,
       m.disc_total, m.year, m.date, m.genre, m.composer, m.compilation, m.duration,
       m.bitrate, m.sample_rate, m.bit_depth, m.channels, m.codec,
       m.mb_recording_id, m.mb_release_id, m.rg_track_gain, m.rg_album_gain,
       (SELECT artwork_hash FROM file_cover c WHERE c.file_id = f.id) AS cover,
       m.error AS tags_error
FROM files f JOIN media m ON m.file_id = f.id
WHERE f.status = 'present' AND f.kind <> 'image';

-- Present videos whose headers were read (a failed read too, its columns NULL).
CREATE VIEW videos AS
SELECT f.id AS file_id, f.path, m.container, m.duration, m.bitrate, m.width, m.height,
       m.codec AS video_codec, m.frame_rate, m.bit_depth, m.hdr, m.audio_languages,
       m.subtitle_languages, m.title, m.year, m.show, m.season, m.episode
FROM files f JOIN media m ON m.file_id = f.id
WHERE f.status = 'present' AND f.kind = 'video';

-- Present images that are not folder covers (covers get no media row), as videos.
CREATE VIEW photos AS
SELECT f.id AS file_id, f.path, m.width, m.height, m.taken_at, m.camera_make, m.camera_model,
       m.lens, m.orientation, m.latitude, m.longitude, m.iso, m.exposure_s, m.f_number,
       m.focal_length_mm
FROM files f JOIN media m ON m.file_id = f.id
WHERE f.status = 'present' AND f.kind = 'image';

-- The album of a track is its album artist (else artist) and album.
CREATE INDEX IF NOT EXISTS media_album_key ON media (coalesce(album_artist, artist), album,
                                                   disc_no, track_no);

-- Albums of present files, with the cover of their first track (by disc, track
-- number, id: the index's order, so the walk stops at the first) that has one.
-- `+a.album_artist` has no affinity, as the indexed expression has none: with the
-- column's TEXT affinity SQLite would not use the index, and would scan `media` for
-- each album. CROSS JOIN keeps `media` the outer loop, in the index's order.
CREATE VIEW album_artwork AS
SELECT a.album_artist, a.album,
       (SELECT c.artwork_hash FROM media m CROSS JOIN files f ON f.id = m.file_id
        JOIN file_cover c ON c.file_id = f.id
        WHERE coalesce(m.album_artist, m.artist) IS +a.album_artist AND m.album = a.album
          AND f.status = 'present' AND c.artwork_hash IS NOT NULL
        ORDER BY m.disc_no, m.track_no, m.file_id LIMIT 1) AS artwork_hash,
       CAST(count(*) AS INTEGER) AS tracks
FROM (SELECT m.album_artist, m.album FROM media m JOIN files f ON f.id = m.file_id
      WHERE f.status = 'present' AND m.album IS NOT NULL AND m.album_artist IS NOT NULL
      UNION ALL
      SELECT m.artist, m.album FROM media m JOIN files f ON f.id = m.file_id
      WHERE f.status = 'present' AND m.album IS NOT NULL AND m.album_artist IS NULL) a
GROUP BY a.album_artist, a.album;
"""

NAMES = tuple(re.findall(r"^CREATE VIEW (\w+)", VIEWS, re.MULTILINE))


def recreate(conn: sqlite3.Connection) -> None:
    """Drop the views named here (as an older schema made them) and create them as now.

    A migration step: it runs inside the transaction schema.migrate opened."""
    for name in NAMES:
        conn.execute(f"DROP VIEW IF EXISTS {name}")
    for statement in VIEWS.split(";\n")[:-1]:
        conn.execute(statement)
