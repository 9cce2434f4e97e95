"""PostgreSQL's client encodings, resolved and read exactly as the server does.

A proxy that reads statements (the firewall's guard parses each with pglast, PostgreSQL's
own parser, which reads UTF-8 text; the router reads shard keys) must first turn the
client's bytes into the very characters the server will see. Two things must match the
server for that. The encoding *name*: PostgreSQL accepts any spelling that, lowercased and
stripped of everything but ASCII letters and digits (clean_encoding_name), is in its alias
table (pg_encname_tbl, src/common/encnames.c) — "Shift_JIS", "WIN-932" and "ms kanji" are
all SJIS — so a check on a few spellings is blind to the rest. And the *reading*: only an
encoding in which every byte below 0x80 is always its ASCII character can be read safely,
and only with a Python codec that yields the characters PostgreSQL's conversion yields. In a
client-only encoding (SJIS, BIG5…) a multibyte character may end in a quote or backslash
byte, so a reader that splits the bytes differently sees a string where the server sees the
end of one and a DROP.
"""

from __future__ import annotations

import codecs
import re

# PostgreSQL's canonical name (pg_enc2name_tbl) -> its spellings in pg_encname_tbl, cleaned.
_ALIASES: dict[str, str] = {
    "SQL_ASCII": "sqlascii",
    "EUC_JP": "eucjp",
    "EUC_CN": "euccn",
    "EUC_KR": "euckr",
    "EUC_TW": "euctw",
    "EUC_JIS_2004": "eucjis2004",
    "UTF8": "utf8 unicode",
    "MULE_INTERNAL": "muleinternal",
    "LATIN1": "latin1 iso88591",
    "LATIN2": "latin2 iso88592",
    "LATIN3": "latin3 iso88593",
    "LATIN4": "latin4 iso88594",
    "LATIN5": "latin5 iso88599",
    "LATIN6": "latin6 iso885910",
    "LATIN7": "latin7 iso885913",
    "LATIN8": "latin8 iso885914",
    "LATIN9": "latin9 iso885915",
    "LATIN10": "latin10 iso885916",
    "ISO_8859_5": "iso88595",
    "ISO_8859_6": "iso88596",
    "ISO_8859_7": "iso88597",
    "ISO_8859_8": "iso88598",
    "WIN866": "win866 windows866 alt",
    "WIN874": "win874 windows874",
    "WIN1250": "win1250 windows1250",
    "WIN1251": "win1251 windows1251 win",
    "WIN1252": "win1252 windows1252",
    "WIN1253": "win1253 windows1253",
    "WIN1254": "win1254 windows1254",
    "WIN1255": "win1255 windows1255",
    "WIN1256": "win1256 windows1256",
    "WIN1257": "win1257 windows1257",
    "WIN1258": "win1258 windows1258 abc tcvn tcvn5712 vscii",
    "KOI8R": "koi8r koi8",
    "KOI8U": "koi8u",
    "SJIS": "sjis shiftjis mskanji win932 windows932",
    "BIG5": "big5 win950 windows950",
    "GBK": "gbk win936 windows936",
    "UHC": "uhc win949 windows949",
    "GB18030": "gb18030",
    "JOHAB": "johab",
    "SHIFT_JIS_2004": "shiftjis2004",
}
ALIASES: dict[str, str] = {a: enc for enc, names in _ALIASES.items() for a in names.split()}
"""Every name in PostgreSQL's alias table, cleaned, with the encoding it stands for."""

CLIENT_ONLY: frozenset[str] = frozenset(
    {"SJIS", "BIG5", "GBK", "UHC", "GB18030", "JOHAB", "SHIFT_JIS_2004"}
)
"""Encodings a client may use but a database may not: their multibyte characters may
end in an ASCII byte (quote, backslash), so they cannot be read by an ASCII-safe reader."""

# Checked byte for byte against PostgreSQL's conversions to UTF-8 (tests): single-byte
# encodings and EUC_CN match Python outright. EUC_JP and EUC_JIS_2004 differ in a few
# symbols (PostgreSQL follows Microsoft: U+FF5E, not Python's U+301C, for A1C1), mended
# by a translation. Python's euc_kr joins KS X 1001 eight-byte jamo sequences into one
# syllable where PostgreSQL keeps four characters; cp949 does not, but reads more than
# EUC-KR (trail bytes 0x41-0x7A), so its input is first held to EUC-KR's shape.
_CODECS = {
    "UTF8": "utf-8",
    "LATIN1": "latin-1",
    **{f"LATIN{n}": f"iso8859-{iso}" for n, iso in enumerate((2, 3, 4, 9, 10, 13, 14, 15, 16), 2)},
    **{f"ISO_8859_{n}": f"iso8859-{n}" for n in range(5, 9)},
    **{f"WIN{n}": f"cp{n}" for n in (866, 874, *range(1250, 1259))},
    "KOI8R": "koi8-r",
    "KOI8U": "koi8-u",
    "EUC_CN": "gb2312",
    "EUC_JP": "pg_euc_jp",
    "EUC_JIS_2004": "pg_euc_jis_2004",
    "EUC_KR": "pg_euc_kr",
}
# Python's character -> PostgreSQL's, where they differ.
_EUC_JP_FIX = str.maketrans(
    "\u301c\u2016\u2212\xa2\xa3\xac\xa6", "\uff5e\u2225\uff0d\uffe0\uffe1\uffe2\uffe4"
)
_EUC_JIS_2004_FIX = str.maketrans("\uffe3\u2015\uffe5\u2985\u2986", "\u203e\u2014\xa5\uff5f\uff60")
# Our codec -> (Python's codec, the byte shape its input must have, the mending).
_MENDED: dict[str, tuple[str, re.Pattern[bytes] | None, dict[int, str]]] = {
    "pg_euc_jp": ("euc_jp", None, _EUC_JP_FIX),
    "pg_euc_jis_2004": ("euc_jis_2004", None, _EUC_JIS_2004_FIX),
    "pg_euc_kr": ("cp949", re.compile(rb"(?:[\x00-\x7f]|[\xa1-\xfe][\xa1-\xfe])*"), {}),
}


def _mended_codec(name: str) -> codecs.CodecInfo | None:
    """The decode-only codecs of _MENDED, for codecs.lookup."""
    if name not in _MENDED:
        return None
    base, shape, table = _MENDED[name]

    def decode(data: bytes, errors: str = "strict") -> tuple[str, int]:
        data = bytes(data)
        if shape is not None and errors == "strict":
            match = shape.match(data)
            end = match.end() if match else 0
            if end < len(data):
                raise UnicodeDecodeError(name, data, end, end + 1, "invalid byte sequence")
        return codecs.decode(data, base, errors).translate(table), len(data)

    def encode(text: str, errors: str = "strict") -> tuple[bytes, int]:
        raise UnicodeError(f"{name} only reads what clients send")

    return codecs.CodecInfo(encode, decode, name=name)


codecs.register(_mended_codec)


def canonical(name: str) -> str | None:
    """PostgreSQL's name for the encoding ``name`` spells ("UTF8", "SJIS", "EUC_JP"…), as
    the server reports it in ParameterStatus, or None if PostgreSQL knows no such name.

    A name with a non-ASCII character is None: the server keeps or drops such a character
    depending on its LC_CTYPE, so no answer is certain.
    """
    if not name.isascii() or len(name) >= 64:  # NAMEDATALEN: longer is never in the table
        return None
    cleaned = "".join(c for c in name.lower() if c.isalnum())
    return ALIASES.get(cleaned)


def codec(name: str) -> str | None:
    """The Python codec that reads a client's bytes in encoding ``name`` (any spelling)
    into the characters PostgreSQL reads, or None when there is none: a client-only
    encoding, SQL_ASCII (bytes the server takes unconverted), EUC_TW, MULE_INTERNAL and
    unknown names. A codec may refuse bytes PostgreSQL accepts (characters Python lacks),
    never read them as other characters, and never reads a byte below 0x80 as anything
    but its ASCII character."""
    enc = canonical(name)
    return None if enc is None else _CODECS.get(enc)


def is_readable(name: str) -> bool:
    """Whether the firewall can read SQL sent in encoding ``name`` as the server does."""
    return codec(name) is not None


def reads_unlike_proxy(name: str, value: str) -> bool:
    """Whether a setting's value, as the server reports it (ParameterStatus), makes
    PostgreSQL read SQL unlike a proxy reading it here: a session in which it holds is
    ended (server.py)."""
    if name == "standard_conforming_strings":
        return value != "on"
    return name == "client_encoding" and codec(value) is None
