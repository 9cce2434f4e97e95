"""engines.pgproxy.encodings: encoding names resolved, and client bytes read, as PostgreSQL
does. The first tests need no server; the last ones ask the real PostgreSQL."""

from __future__ import annotations

import codecs
import random

import psycopg
import pytest

from engines.pgcluster import Cluster
from engines.pgproxy import encodings
from engines.pgproxy.encodings import CLIENT_ONLY, canonical, codec, is_readable

# pg_encname_tbl in PostgreSQL's src/common/encnames.c, transcribed: every alias, cleaned.
PG_ENCNAME_TBL = {
    "abc": "WIN1258", "alt": "WIN866", "big5": "BIG5", "euccn": "EUC_CN",
    "eucjis2004": "EUC_JIS_2004", "eucjp": "EUC_JP", "euckr": "EUC_KR", "euctw": "EUC_TW",
    "gb18030": "GB18030", "gbk": "GBK", "iso88591": "LATIN1", "iso885910": "LATIN6",
    "iso885913": "LATIN7", "iso885914": "LATIN8", "iso885915": "LATIN9",
    "iso885916": "LATIN10", "iso88592": "LATIN2", "iso88593": "LATIN3", "iso88594": "LATIN4",
    "iso88595": "ISO_8859_5", "iso88596": "ISO_8859_6", "iso88597": "ISO_8859_7",
    "iso88598": "ISO_8859_8", "iso88599": "LATIN5", "johab": "JOHAB", "koi8": "KOI8R",
    "koi8r": "KOI8R", "koi8u": "KOI8U", "latin1": "LATIN1", "latin10": "LATIN10",
    "latin2": "LATIN2", "latin3": "LATIN3", "latin4": "LATIN4", "latin5": "LATIN5",
    "latin6": "LATIN6", "latin7": "LATIN7", "latin8": "LATIN8", "latin9": "LATIN9",
    "mskanji": "SJIS", "muleinternal": "MULE_INTERNAL", "shiftjis": "SJIS",
    "shiftjis2004": "SHIFT_JIS_2004", "sjis": "SJIS", "sqlascii": "SQL_ASCII",
    "tcvn": "WIN1258", "tcvn5712": "WIN1258", "uhc": "UHC", "unicode": "UTF8", "utf8": "UTF8",
    "vscii": "WIN1258", "win": "WIN1251", "win1250": "WIN1250", "win1251": "WIN1251",
    "win1252": "WIN1252", "win1253": "WIN1253", "win1254": "WIN1254", "win1255": "WIN1255",
    "win1256": "WIN1256", "win1257": "WIN1257", "win1258": "WIN1258", "win866": "WIN866",
    "win874": "WIN874", "win932": "SJIS", "win936": "GBK", "win949": "UHC", "win950": "BIG5",
    "windows1250": "WIN1250", "windows1251": "WIN1251", "windows1252": "WIN1252",
    "windows1253": "WIN1253", "windows1254": "WIN1254", "windows1255": "WIN1255",
    "windows1256": "WIN1256", "windows1257": "WIN1257", "windows1258": "WIN1258",
    "windows866": "WIN866", "windows874": "WIN874", "windows932": "SJIS", "windows936": "GBK",
    "windows949": "UHC", "windows950": "BIG5",
}  # fmt: skip
# pg_enc2name_tbl: the canonical names, by encoding id (enum pg_enc). From SJIS on,
# client-only (PG_ENCODING_BE_LAST is KOI8U).
ENCODINGS = [
    "SQL_ASCII", "EUC_JP", "EUC_CN", "EUC_KR", "EUC_TW", "EUC_JIS_2004", "UTF8",
    "MULE_INTERNAL", "LATIN1", "LATIN2", "LATIN3", "LATIN4", "LATIN5", "LATIN6", "LATIN7",
    "LATIN8", "LATIN9", "LATIN10", "WIN1256", "WIN1258", "WIN866", "WIN874", "KOI8R",
    "WIN1251", "WIN1252", "ISO_8859_5", "ISO_8859_6", "ISO_8859_7", "ISO_8859_8", "WIN1250",
    "WIN1253", "WIN1254", "WIN1255", "WIN1257", "KOI8U",
    "SJIS", "BIG5", "GBK", "UHC", "GB18030", "JOHAB", "SHIFT_JIS_2004",
]  # fmt: skip
UNREADABLE = {"SQL_ASCII", "EUC_TW", "MULE_INTERNAL"} | CLIENT_ONLY
READABLE = [e for e in ENCODINGS if e not in UNREADABLE]
SPELLINGS = [
    ("Shift_JIS", "SJIS"), ("WIN-932", "SJIS"), ("win 936", "GBK"), ("s.j.i.s", "SJIS"),
    ("U-T-F-8", "UTF8"), ("unicode", "UTF8"), ("UTF-8", "UTF8"), ("Unicode", "UTF8"),
    ("MS_Kanji", "SJIS"), ("Windows-932", "SJIS"), ("BIG-5", "BIG5"), ("b_i_g_5", "BIG5"),
    ("Windows_950", "BIG5"), ("G.B.K", "GBK"), ("WIN949", "UHC"), ("u h c", "UHC"),
    ("GB-18030", "GB18030"), ("Jo-Hab", "JOHAB"), ("Shift-JIS-2004", "SHIFT_JIS_2004"),
    ("SHIFT_JIS_2004", "SHIFT_JIS_2004"), ("ISO-8859-1", "LATIN1"), ("iso_8859_15", "LATIN9"),
    ("ISO8859-9", "LATIN5"), ("Latin-1", "LATIN1"), ("Windows-1252", "WIN1252"),
    ("cp-1252?", None), ("EUC-JP", "EUC_JP"), ("euc_jis_2004", "EUC_JIS_2004"),
    ("KOI8-R", "KOI8R"), ("koi-8", "KOI8R"), ("Mule-Internal", "MULE_INTERNAL"),
    ("SQL-ASCII", "SQL_ASCII"), (" utf8 ", "UTF8"), ("\tutf8\n", "UTF8"), ("'utf8'", "UTF8"),
    ("TCVN-5712", "WIN1258"), ("Alt", "WIN866"), ("WIN", "WIN1251"),
]  # fmt: skip
UNKNOWN = [
    "", "-", "utf16", "utf-32", "ucs2", "cp936", "cp932", "latin11", "iso88591x", "euc",
    "shift jis 2004x", "ascii", "us-ascii", "win1259", "euc_jp_ms", "-" * 60 + "utf8",
]  # fmt: skip
NON_ASCII = ["utf8\u00e9", "\uff55\uff54\uff46\uff18", "\u212aoi8r", "s\u00a0jis"]


@pytest.mark.parametrize(("alias", "encoding"), sorted(PG_ENCNAME_TBL.items()))
def test_every_alias_resolves(alias: str, encoding: str) -> None:
    assert canonical(alias) == encoding
    assert canonical(alias.upper()) == encoding


def test_the_table_is_postgres_table() -> None:
    assert encodings.ALIASES == PG_ENCNAME_TBL
    assert set(PG_ENCNAME_TBL.values()) == set(ENCODINGS)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_canonical_names_are_their_own_spelling(encoding: str) -> None:
    assert canonical(encoding) == encoding
    assert canonical(encoding.lower().replace("_", "-")) == encoding


@pytest.mark.parametrize(("name", "encoding"), SPELLINGS)
def test_spellings_resolve_as_postgres_resolves_them(name: str, encoding: str | None) -> None:
    assert canonical(name) == encoding


@pytest.mark.parametrize("name", UNKNOWN + NON_ASCII)
def test_unknown_names(name: str) -> None:
    assert canonical(name) is None
    assert codec(name) is None
    assert not is_readable(name)


def test_client_only_encodings_are_not_readable() -> None:
    assert set(ENCODINGS[ENCODINGS.index("SJIS") :]) == CLIENT_ONLY
    for alias, encoding in PG_ENCNAME_TBL.items():
        assert is_readable(alias) is (encoding not in UNREADABLE), alias
    for name in ("Shift_JIS", "WIN-932", "win 936", "s.j.i.s", "Big-5", "Windows949", "johab"):
        assert codec(name) is None
        assert not is_readable(name)


@pytest.mark.parametrize(
    ("encoding", "python"),
    [("SJIS", "cp932"), ("BIG5", "cp950"), ("GBK", "gbk"), ("UHC", "cp949"),
     ("GB18030", "gb18030"), ("JOHAB", "johab"), ("SHIFT_JIS_2004", "shift_jis_2004")],
)  # fmt: skip
def test_client_only_characters_end_in_ascii_bytes(encoding: str, python: str) -> None:
    """Why they are refused: a character's last byte may be an ASCII byte, e.g. 0x5C (a
    backslash) in SJIS 0x95 0x5C (表), so reading the bytes otherwise misplaces the SQL."""
    hiding = [
        bytes([lead, trail])
        for lead in range(0x81, 0xFF)
        for trail in range(0x21, 0x7F)
        if len(_decode(bytes([lead, trail]), python) or "") == 1
    ]
    assert hiding, encoding
    assert encoding in CLIENT_ONLY


def test_the_readable_encodings() -> None:
    assert [e for e in ENCODINGS if is_readable(e)] == READABLE
    assert codec("utf8") == "utf-8"
    assert codec("Latin-1") == "latin-1"
    assert codec("ISO-8859-9") == codec("LATIN5") == "iso8859-9"
    assert codec("Windows-1252") == "cp1252"


@pytest.mark.parametrize("encoding", READABLE)
def test_readable_codecs_keep_every_ascii_byte(encoding: str) -> None:
    """Every byte below 0x80 reads as its ASCII character, alone or after any other byte."""
    name = codec(encoding)
    assert name is not None
    codecs.lookup(name)
    assert bytes(range(0x80)).decode(name) == "".join(map(chr, range(0x80)))
    for lead in range(0x80, 0x100):
        for ascii_byte in range(0x80):
            for data in (bytes([lead, ascii_byte]), bytes([0x8F, lead, ascii_byte])):
                text = _decode(data, name)
                if text is not None:
                    assert [c for c in text if c < "\x80"] == [chr(ascii_byte)], data


def test_mended_codecs() -> None:
    assert b"\xa1\xc1".decode(codec("EUC-JP") or "") == "\uff5e"  # not Python's U+301C
    makeup = b"\xa4\xd4\xa4\xa1\xa4\xbf\xa4\xd4"  # KS X 1001 filler, G, A, filler
    assert makeup.decode("euc_kr") == "\uac00"  # Python's euc_kr: one syllable
    assert makeup.decode(codec("EUC_KR") or "") == "\u3164\u3131\u314f\u3164"  # PostgreSQL
    with pytest.raises(UnicodeDecodeError) as raised:
        b"SELECT '\x81'".decode("pg_euc_kr")  # a UHC lead byte is not EUC-KR
    assert raised.value.start == 8
    assert b"\x81A".decode("pg_euc_kr", "replace")  # lenient when asked, for logs
    with pytest.raises(UnicodeError):
        "x".encode("pg_euc_jp")


def _decode(data: bytes, name: str) -> str | None:
    try:
        return data.decode(name)
    except UnicodeDecodeError:
        return None


# -- against PostgreSQL -------------------------------------------------------------------


def test_names_resolve_as_in_postgres(postgres: Cluster) -> None:
    names = [n for alias in PG_ENCNAME_TBL for n in (alias, alias.upper())]
    names += [n for n, _ in SPELLINGS] + UNKNOWN + ENCODINGS
    with psycopg.connect(postgres[0].dsn()) as conn:
        rows = conn.execute(
            "SELECT n, pg_encoding_to_char(pg_char_to_encoding(n)) FROM unnest(%s::text[]) n",
            (names,),
        ).fetchall()
        by_id = conn.execute(
            "SELECT pg_encoding_to_char(i) FROM generate_series(0, 99) i ORDER BY i"
        ).fetchall()
    assert {n: canonical(n) or "" for n, _ in rows} == dict(rows)
    assert [e for (e,) in by_id if e] == ENCODINGS  # no encoding missing, same ids


# Decodes each bytea alone; NULL where PostgreSQL refuses it.
DECODE_EACH = """
CREATE FUNCTION pg_temp.decode_each(seqs bytea[], enc text) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE out text[] := '{}';
BEGIN
  FOR k IN 1..coalesce(array_length(seqs, 1), 0) LOOP
    BEGIN
      out := out || convert_from(seqs[k], enc);
    EXCEPTION WHEN others THEN
      out := out || NULL::text;
    END;
  END LOOP;
  RETURN out;
END $$"""


def _sequences(encoding: str) -> list[bytes]:
    """Every character PostgreSQL may accept in ``encoding`` (for UTF8, a sample), and more."""
    high = range(0x80, 0x100)
    seqs = [bytes([b]) for b in high]
    if encoding == "UTF8":
        seqs += [bytes([a, b]) for a in range(0xC0, 0x100) for b in range(0x80, 0xC0)]
        seqs += [bytes([a, b, 0x80]) for a in range(0xE0, 0xF0) for b in range(0x80, 0xC0)]
        seqs += [bytes([a, b, 0x80, 0x80]) for a in range(0xF0, 0x100) for b in range(0x80, 0xC0)]
    elif encoding.startswith("EUC_"):
        euc = range(0xA1, 0xFF)
        seqs += [bytes([a, b]) for a in high for b in euc] + [bytes([0x8E, b]) for b in high]
        seqs += [bytes([0x8F, a, b]) for a in euc for b in euc]
    return seqs


@pytest.mark.parametrize("encoding", READABLE)
def test_codecs_read_what_postgres_reads(postgres: Cluster, encoding: str) -> None:
    """Each character alone, then thousands in one string with ASCII between them: wherever
    both PostgreSQL and the codec read the bytes, they read the same characters."""
    name = codec(encoding) or ""
    seqs = _sequences(encoding)
    with psycopg.connect(postgres[0].dsn(), autocommit=True) as conn:
        conn.execute(DECODE_EACH)
        [(theirs,)] = conn.execute("SELECT pg_temp.decode_each(%s, %s)", (seqs, encoding))
        read = dict(zip(seqs, theirs, strict=True))
        ours = {s: _decode(s, name) for s in seqs}
        both = [s for s in seqs if read[s] is not None and ours[s] is not None]
        assert {s: ours[s] for s in both} == {s: read[s] for s in both}
        if encoding.startswith("EUC") or encoding == "UTF8":
            assert len(both) > 1000
        else:  # single-byte: Python reads every byte PostgreSQL reads
            assert [s for s in seqs if read[s] is not None and ours[s] is None] == []
        rng = random.Random(encoding)
        parts = [*rng.choices(both, k=5000), *(c.encode() for c in "'\\\";- $aZ09\n")]
        if encoding == "EUC_KR":
            parts += [b"\xa4\xd4\xa4\xa1\xa4\xbf\xa4\xd4"] * 20
        rng.shuffle(parts)
        data = b"".join(parts)
        [(whole,)] = conn.execute("SELECT convert_from(%s, %s)", (data, encoding))
        assert data.decode(name) == whole
