"""Lead files: every data row becomes a lead or a problem naming its physical line and field."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from callcenter.csvfile import MAX_RECORD_LINES
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


def test_a_number_saved_as_a_spreadsheet_decimal_is_a_bad_row() -> None:
    """``13800000001.0`` (a phone column a spreadsheet saved as numbers) was read as the
    12-digit 138000000010: a number nobody has dialled, the lead never reached."""
    rows, problems = parse("phone,name\n13800000001.0,Ann\n13800000002,Bob\n")
    assert [r.line for r in rows] == [3]
    assert [(line, field) for line, field, _ in problems] == [(2, "phone")]
    assert "spreadsheet's decimal number" in problems[0][2]


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
    """A stray quote is reported at its line, its text kept; the following rows are still read."""
    rows, problems = parse_leads_csv(io.StringIO(
        'phone,name\n"138"00,x\n13800000001,ok\n"13800000002,never closed\n13800000003,z\n', newline=""), "leads.csv")
    assert [r.line for r in rows] == [3, 5]
    assert [(p.line, p.field, p.reason, p.raw) for p in problems] == [
        (2, "row", "not valid CSV: ',' expected after '\"'", ('"138"00,x',)),
        (4, "row", "not valid CSV: a quote opened here never closes (lines 4-5)", ('"13800000002,never closed',)),
    ]


@pytest.mark.parametrize("rows", [2_000, 20_002])
def test_a_quote_that_never_closes_swallows_no_row(rows: int) -> None:
    """An unclosed quote is the problem of its own line, naming the lines it ran over (to the
    end of the file, or to the CSV field limit of a large file); every other line is a row."""
    lines = ["phone,name"] + [f"13{i:09d},Lead {i}" for i in range(rows)]
    bad = rows // 2 + 1  # the line (counting the header as 1) of the row made bad
    lines[bad - 1] = f'13{bad:09d},"Bob'
    leads, problems = parse_leads_csv(io.StringIO("\n".join(lines) + "\n", newline=""), "leads.csv")
    assert len(leads) + len(problems) == rows
    assert len(problems) == 1 and (problems[0].line, problems[0].field) == (bad, "row")
    assert problems[0].raw == (f'13{bad:09d},"Bob',)
    if rows == 2_000:
        assert problems[0].reason == f"not valid CSV: a quote opened here never closes (lines {bad}-{rows + 1})"
    else:  # the reader gave up at its field limit before the end of the file
        assert problems[0].reason.startswith(f"not valid CSV: a quote opened here never closes properly (lines {bad}-")
        assert problems[0].reason.endswith(": field larger than field limit (131072))")
    assert [r.line for r in leads] == [line for line in range(2, rows + 2) if line != bad]


def test_a_quote_closed_by_a_later_rows_quote_takes_only_its_own_line() -> None:
    """A stray quote that a later row's quote seems to close (into bad CSV, or a record of
    the wrong width) is the problem of its own line; the rows it spanned are read as rows."""
    text = ('phone,name,notes\n'
            '13800000001,"Bob,x\n'               # 2: the quote never closes properly
            '13800000002,Ann,x\n'                # 3
            '13800000003,"Cy","quoted note"\n'   # 4: its first quote "closes" line 2's into bad CSV
            '13800000004,"Di,x\n'                # 5: closed at 6 into a record of 2 columns
            '13800000005,Ed,x"\n')               # 6: alone, a quote inside a field is text
    rows, problems = parse(text)
    assert [(r.line, r.name, r.extra) for r in rows] == [
        (3, "Ann", {"notes": "x"}), (4, "Cy", {"notes": "quoted note"}), (6, "Ed", {"notes": 'x"'})]
    assert problems == [
        (2, "row", "not valid CSV: a quote opened here never closes properly (lines 2-4: ',' expected after '\"')"),
        (5, "row", "not valid CSV: a quote opened here never closes properly (lines 5-6: 2 columns, expected 3)"),
    ]


def test_a_quoted_field_may_span_up_to_max_record_lines() -> None:
    """A note of MAX_RECORD_LINES lines is one field; one line more is taken for a quote that
    never closes, and its lines are read as rows (here: rows of the wrong width)."""
    note = "\n".join(f"note line {i}" for i in range(MAX_RECORD_LINES))
    rows, problems = parse(f'phone,notes\n13800000001,"{note}"\n13800000002,ok\n')
    assert problems == []
    assert [(r.line, r.extra["notes"]) for r in rows] == [(2, note), (MAX_RECORD_LINES + 2, "ok")]

    longer = note + "\none line too many"
    rows, problems = parse(f'phone,notes\n13800000001,"{longer}"\n13800000002,ok\n')
    reason = (f"not valid CSV: a quote opened here never closes properly (lines 2-{MAX_RECORD_LINES + 2}:"
              f" still open after {MAX_RECORD_LINES} lines)")
    assert problems[0] == (2, "row", reason)
    assert [r.line for r in rows] == [MAX_RECORD_LINES + 3]
    assert len(rows) + len(problems) == MAX_RECORD_LINES + 2  # every line after the header accounted for


def test_a_nul_character_is_a_problem_of_its_row_and_field() -> None:
    """PostgreSQL cannot store a NUL: the row with one is a problem naming its line and column
    (the first with a NUL), its fields kept; the other rows import."""
    text = ("电话,name,city\n"
            "13800000001,Ann,Guangzhou\n"
            "13800000002,A\x00nn,Guangzhou\n"
            "13800000003,Bob,Guang\x00zhou\n"
            "13800\x0000004,C\x00y,x\n"
            "13800000005,Di,Shenzhen\n")
    rows, problems = parse_leads_csv(io.StringIO(text, newline=""), "leads.csv")
    assert [r.line for r in rows] == [2, 6]
    reason = "contains a NUL character (\\x00), which the database cannot store"
    assert [(p.line, p.field, p.reason, p.raw) for p in problems] == [
        (3, "name", reason, ("13800000002", "A\x00nn", "Guangzhou")),
        (4, "city", reason, ("13800000003", "Bob", "Guang\x00zhou")),
        (5, "phone", reason, ("13800\x0000004", "C\x00y", "x")),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "leads.csv:1: empty file"),
        ("\n\n", "leads.csv:1: empty file"),
        ("name,city\nAnn,x\n", "leads.csv:1: header: no phone column"),
        ("phone,mobile\n1,2\n", "leads.csv:1: header: 'mobile' repeats column 'phone'"),
        ("phone,,x\n", "leads.csv:1: header: column 2 has no name"),
        ("phone,na\x00me\n1,2\n", r"leads.csv:1: header: column 2 \('na\\x00me'\) contains a NUL character"),
        ('phone,"name\n1,2\n', "leads.csv:1: header: not valid CSV: a quote opened here never closes \\(lines 1-2\\)"),
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
