"""Lead files: every data row becomes a lead or a problem naming its physical line and field."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from callcenter.dialer.leads_csv import LeadFileError, parse_leads_csv, read_leads_file
from callcenter.storage.dialer_records import LeadRow


def parse(text: str) -> tuple[list[LeadRow], list[tuple[int, str, str]]]:
    rows, problems = parse_leads_csv(io.StringIO(text, newline=""), "leads.csv")
    return rows, [(p.line, p.field, p.reason) for p in problems]


def test_good_rows_are_normalised_and_extra_columns_kept() -> None:
    """Phones are normalised, aliases map to phone/name/timezone, other columns go to extra."""
    rows, problems = parse("Mobile,Name,TZ,city,plan\n"
                           "+86 138-0013-8000,Li Wei,Asia/Shanghai,Guangzhou,gold\n"
                           "13900139000,,,Shenzhen,\n")
    assert problems == []
    assert rows == [
        LeadRow(2, "+8613800138000", "Li Wei", "Asia/Shanghai", {"city": "Guangzhou", "plan": "gold"}),
        LeadRow(3, "13900139000", None, None, {"city": "Shenzhen", "plan": ""}),
    ]


def test_chinese_headers() -> None:
    """电话/手机 name the phone column, 姓名 the name, 时区 the time zone."""
    for phone_header in ("电话", "手机", "手机号"):
        rows, problems = parse(f"{phone_header},姓名,时区,备注\n13800138000,王伟,Asia/Shanghai,老客户\n")
        assert problems == []
        assert rows == [LeadRow(2, "13800138000", "王伟", "Asia/Shanghai", {"备注": "老客户"})]


def test_each_bad_row_is_reported_by_line_field_and_reason_and_good_rows_kept() -> None:
    """Missing/invalid phone, unknown zone, wrong column count, repeated phone, long name:
    one problem each, the good rows kept, nothing lost."""
    long_name = "x" * 201
    text = (
        "phone,name,timezone\n"               # 1
        "13800000001,Ann,Asia/Shanghai\n"     # 2 ok
        ",Bob,Asia/Shanghai\n"                # 3 missing phone
        "call-me,Cy,\n"                       # 4 invalid phone
        "13800000002,Di,Mars/Olympus\n"       # 5 unknown zone
        "13800000003,Ed\n"                    # 6 too few columns
        "138 0000 0001,Flo,\n"                # 7 repeats line 2
        f"13800000004,{long_name},\n"         # 8 name too long
        "13800000005,Gus,Europe/London\n"     # 9 ok
    )
    rows, problems = parse(text)
    assert [r.line for r in rows] == [2, 9]
    assert problems == [
        (3, "phone", "missing"),
        (4, "phone", "must be 3 to 15 digits with an optional leading +, got 'call-me'"),
        (5, "timezone", "unknown time zone 'Mars/Olympus'"),
        (6, "row", "expected 3 columns, got 2"),
        (7, "phone", "duplicate of line 2 (13800000001)"),
        (8, "name", "must be at most 200 characters, got 201"),
    ]
    assert len(rows) + len(problems) == 8


def test_lines_count_physical_lines_of_quoted_multiline_fields() -> None:
    """A quoted field spanning lines moves the line numbers of the rows after it; blank lines are no rows."""
    text = ('phone,name,notes\r\n'
            '13800000001,"Li\r\nWei","first line\r\nsecond line\r\nthird"\r\n'  # lines 2-5
            '\r\n'                                                                # 6 blank
            'oops,x,y\r\n'                                                        # 7
            '13800000002,"Ann","a ""quoted"" note"\r\n')                          # 8
    rows, problems = parse(text)
    assert [(r.line, r.name) for r in rows] == [(2, "Li\r\nWei"), (8, "Ann")]
    assert rows[0].extra == {"notes": "first line\r\nsecond line\r\nthird"}
    assert rows[1].extra == {"notes": 'a "quoted" note'}
    assert problems == [(7, "phone", "must be 3 to 15 digits with an optional leading +, got 'oops'")]


def test_malformed_quotes_are_a_row_problem_and_parsing_goes_on() -> None:
    """A stray quote is reported at its line; the following rows are still read."""
    rows, problems = parse('phone,name\n"138"00,x\n13800000001,ok\n"13800000002,never closed\n13800000003,z\n')
    assert [r.line for r in rows] == [3]
    assert [(line, field) for line, field, _ in problems] == [(2, "row"), (4, "row")]
    assert problems[0][2].startswith("not valid CSV: ")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "leads.csv:1: empty file"),
        ("\n\n", "leads.csv:1: empty file"),
        ("name,city\nAnn,x\n", "leads.csv:1: header: no phone column"),
        ("phone,mobile\n1,2\n", "leads.csv:1: header: 'mobile' repeats column 'phone'"),
        ("phone,,x\n", "leads.csv:1: header: column 2 has no name"),
    ],
)
def test_header_problems_reject_the_file(text: str, message: str) -> None:
    """Without a usable header no row can be read: the error names the file and line 1."""
    with pytest.raises(LeadFileError, match=f"^{message}"):
        parse(text)


def test_utf8_with_and_without_bom(tmp_path: Path) -> None:
    """UTF-8 files read the same with a byte-order mark (Excel's "CSV UTF-8") or without."""
    text = "电话,姓名\r\n13800138000,王伟\r\n"
    plain, bom = tmp_path / "plain.csv", tmp_path / "bom.csv"
    plain.write_bytes(text.encode("utf-8"))
    bom.write_bytes(text.encode("utf-8-sig"))
    expected = ([LeadRow(2, "13800138000", "王伟")], [])
    assert read_leads_file(plain) == expected
    assert read_leads_file(bom) == expected


def test_gb18030_file(tmp_path: Path) -> None:
    """A GB18030 file from a Chinese lead vendor reads with --encoding gb18030 (also a 4-byte character)."""
    path = tmp_path / "vendor.csv"
    path.write_bytes("手机,姓名,地址\n13800138000,王𠀀伟,广州市天河区\n".encode("gb18030"))
    rows, problems = read_leads_file(path, encoding="gb18030")
    assert problems == []
    assert rows == [LeadRow(2, "13800138000", "王𠀀伟", None, {"地址": "广州市天河区"})]


def test_undecodable_bytes_name_the_line(tmp_path: Path) -> None:
    """A GB18030 file read as UTF-8 fails with the file, the line and a hint about --encoding."""
    path = tmp_path / "vendor.csv"
    path.write_bytes("phone,name\n13800138000,Ann\n13800138001,王伟\n".encode("gb18030"))
    with pytest.raises(LeadFileError, match=rf"^{path}:3: not valid utf-8: byte 0x.. cannot be decoded \(try --encoding"):
        read_leads_file(path)


def test_unknown_or_unsafe_encodings_are_refused(tmp_path: Path) -> None:
    """An unknown encoding, or UTF-16 (whose bytes cannot be split at newlines), is refused by name."""
    path = tmp_path / "x.csv"
    path.write_bytes(b"phone\n1234\n")
    with pytest.raises(LeadFileError, match="encoding: unknown encoding 'klingon'"):
        read_leads_file(path, encoding="klingon")
    with pytest.raises(LeadFileError, match="encoding: utf-16 is not supported"):
        read_leads_file(path, encoding="utf-16")


def test_lead_row_validates_itself() -> None:
    """LeadRow normalises the phone and rejects an unknown time zone, naming the field."""
    assert LeadRow(5, " +86 20 1234 5678 ").phone == "02012345678"
    with pytest.raises(ValueError, match="^timezone: unknown time zone"):
        LeadRow(5, "12345", timezone="Nowhere/City")
    with pytest.raises(ValueError, match="^line: "):
        LeadRow(0, "12345")
