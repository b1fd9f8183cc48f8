"""Tests of the pure SMS text module (``callcenter.sms.text``).

Lengths are checked at the exact boundaries where a message starts costing another part,
templates at the errors an operator will make, and replies and SIP headers as they arrive.
"""

from __future__ import annotations

import pytest

from callcenter.sms.text import (
    OPT_OUT_WORDS,
    SmsPolicy,
    SmsShape,
    TemplateError,
    check_length,
    is_opt_out,
    prepare_template,
    render,
    shape,
    sip_user,
    template_fields,
)

GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = "\f^{}\\[~]|€"
CHINESE = "您"
EMOJI = "😀"

POLICY = SmsPolicy(signature="【某某公司】", opt_out_note="回T退订")


# --- shape -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("", SmsShape("GSM-7", 0, 0)),
        ("a" * 160, SmsShape("GSM-7", 160, 1)),
        ("a" * 161, SmsShape("GSM-7", 161, 2)),
        ("a" * 306, SmsShape("GSM-7", 306, 2)),
        ("a" * 307, SmsShape("GSM-7", 307, 3)),
        (CHINESE * 70, SmsShape("UCS-2", 70, 1)),
        (CHINESE * 71, SmsShape("UCS-2", 71, 2)),
        (CHINESE * 134, SmsShape("UCS-2", 134, 2)),
        (CHINESE * 135, SmsShape("UCS-2", 135, 3)),
    ],
    ids=["empty", "gsm160", "gsm161", "gsm306", "gsm307", "zh70", "zh71", "zh134", "zh135"],
)
def test_parts_change_exactly_at_the_single_and_multipart_limits(body: str, expected: SmsShape) -> None:
    """160 septets / 70 UCS-2 units fit one message; beyond, 153 / 67 a part (the UDH)."""
    assert shape(body) == expected


def test_extension_characters_count_two_septets() -> None:
    """``€`` and the other extension-table characters are ESC + char: 80 of them fill 160."""
    assert shape("€" * 80) == SmsShape("GSM-7", 160, 1)
    assert shape("€" * 80 + "a") == SmsShape("GSM-7", 161, 2)
    assert shape(GSM_EXTENSION) == SmsShape("GSM-7", 2 * len(GSM_EXTENSION), 1)


def test_whole_gsm_basic_table_stays_gsm7_at_one_septet_each() -> None:
    """Every basic-table character (Greek capitals, accents, CR/LF included) is GSM-7."""
    assert len(set(GSM_BASIC)) == 127
    assert shape(GSM_BASIC) == SmsShape("GSM-7", 127, 1)
    for char in GSM_BASIC:
        assert shape(char) == SmsShape("GSM-7", 1, 1), repr(char)


@pytest.mark.parametrize("char", ["ç", "á", "`", "\u2126", "\u00b5", "\t", "\u00a0", "\u00a5\u0301"])
def test_characters_outside_gsm_0338_switch_to_ucs2(char: str) -> None:
    """Look-alikes not in the table (ç, á, the ohm sign, a tab, no-break space) force UCS-2."""
    assert shape("hello " + char).encoding == "UCS-2"


def test_emoji_counts_two_utf16_units() -> None:
    """An emoji outside the BMP is a surrogate pair: 2 units, so 35 of them fill 70."""
    assert shape(EMOJI) == SmsShape("UCS-2", 2, 1)
    assert shape(EMOJI * 35) == SmsShape("UCS-2", 70, 1)
    assert shape(EMOJI * 35 + "a") == SmsShape("UCS-2", 71, 2)


def test_one_chinese_character_switches_a_gsm_text_to_ucs2() -> None:
    """100 Latin letters fit one GSM-7 message; one 您 more makes it 101 UCS-2 units, 2 parts."""
    assert shape("a" * 100) == SmsShape("GSM-7", 100, 1)
    assert shape("a" * 100 + CHINESE) == SmsShape("UCS-2", 101, 2)
    assert shape("€" * 10 + CHINESE) == SmsShape("UCS-2", 11, 1)


# --- templates ---------------------------------------------------------------------------


def test_template_fields_in_order_without_repeats() -> None:
    """A field used twice is listed once, at its first use."""
    assert template_fields("{name}您好，{phone} 的账单 {name} {amount_2}") == ("name", "phone", "amount_2")
    assert template_fields("no fields") == ()


def test_doubled_braces_are_literal_not_fields() -> None:
    """``{{x}}`` is the text ``{x}``, not a placeholder."""
    assert template_fields("{{x}} {y} }}{{") == ("y",)
    assert render("{{x}} {y} }}{{", {"y": "1"}) == "{x} 1 }{"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("Hello {name", "template: unclosed '{' at column 7"),
        ("Hi {a {b}", "template: unclosed '{' at column 4"),
        ("Hello name}", "template: single '}' at column 11"),
        ("{{x}", "template: single '}' at column 4"),
        ("您好 {1st}", "template: bad field name {1st} at column 4"),
        ("x{na-me}", "template: bad field name {na-me} at column 2"),
        ("x{ name }", "template: bad field name { name } at column 2"),
        ("{}", "template: bad field name {} at column 1"),
    ],
)
def test_template_errors_name_the_problem_and_column(template: str, message: str) -> None:
    """The operator sees what is wrong and where (1-based column of the brace)."""
    with pytest.raises(TemplateError) as caught:
        template_fields(template)
    assert str(caught.value).startswith(message)


def test_render_fills_fields_and_leaves_values_alone() -> None:
    """Values go in verbatim: braces in a customer's name are not parsed."""
    assert render("{name}您好，尾号{tail}", {"name": "张{三}", "tail": "0017", "unused": "x"}) == "张{三}您好，尾号0017"


def test_render_names_a_missing_field() -> None:
    """A lead without the column the template needs fails, naming the column."""
    with pytest.raises(TemplateError, match=r"missing field \{phone\} at column 10 \(given: name\)"):
        render("{name}，电话{phone}", {"name": "张三"})


def test_render_rejects_a_bad_template() -> None:
    """render parses like template_fields: an unbalanced brace is an error, not text."""
    with pytest.raises(TemplateError, match="unclosed"):
        render("{name", {"name": "x"})


# --- policy ------------------------------------------------------------------------------


def test_prepare_adds_signature_first_and_note_last() -> None:
    """A bare template gets the signature in front and the opt-out note behind, after strip."""
    assert prepare_template("  {name}您好  \n", POLICY, {"name"}) == "【某某公司】{name}您好回T退订"


def test_prepare_adds_signature_and_note_once() -> None:
    """Already signed and noted: unchanged; preparing the result again changes nothing."""
    signed = "【某某公司】{name}您好，回T退订。"
    assert prepare_template(signed, POLICY, {"name"}) == signed
    once = prepare_template("{name}您好", POLICY, {"name"})
    assert prepare_template(once, POLICY, {"name"}) == once
    assert once.count("【某某公司】") == 1
    assert once.count("回T退订") == 1


def test_prepare_appends_note_only_when_absent() -> None:
    """A note mid-text counts as present; a signature mid-text does not (it must lead)."""
    assert prepare_template("回T退订，{name}", POLICY, {"name"}) == "【某某公司】回T退订，{name}"
    assert prepare_template("您好【某某公司】", POLICY, ()) == "【某某公司】您好【某某公司】回T退订"


def test_empty_policy_leaves_the_template() -> None:
    """No signature, no note: only the strip."""
    assert prepare_template(" hi {a} ", SmsPolicy(), ["a"]) == "hi {a}"


def test_prepare_rejects_an_empty_template() -> None:
    """Whitespace only is an empty template."""
    with pytest.raises(TemplateError, match="template: empty"):
        prepare_template(" \n\t", POLICY, {"name"})


def test_prepare_rejects_unknown_field_listing_the_allowed_ones() -> None:
    """A typo names the field, its column in the given template and the lead's fields."""
    with pytest.raises(TemplateError) as caught:
        prepare_template("  您好 {nmae}", POLICY, {"phone", "name"})
    message = str(caught.value)
    assert message.startswith("template: unknown field {nmae} at column 6 (fields: name, phone)")
    assert "did you mean {name}?" in message


def test_prepare_unknown_field_with_no_fields_allowed() -> None:
    """With no lead fields at all, any placeholder is refused."""
    with pytest.raises(TemplateError, match=r"unknown field \{x\} at column 1 \(fields: none\)"):
        prepare_template("{x}", POLICY, ())


def test_braces_in_signature_and_note_survive_render() -> None:
    """Signature and note are literal text: their braces are escaped, not placeholders."""
    policy = SmsPolicy(signature="{ACME}", opt_out_note=" reply {T} to stop")
    template = prepare_template("Hi {name}", policy, {"name"})
    assert template_fields(template) == ("name",)
    assert render(template, {"name": "Li"}) == "{ACME}Hi Li reply {T} to stop"
    assert prepare_template(template, policy, {"name"}) == template


@pytest.mark.parametrize("max_parts", [0, -1, True])
def test_policy_rejects_bad_max_parts(max_parts: int) -> None:
    """A cap below one part (or a bool) is a configuration error naming the field."""
    with pytest.raises(ValueError, match="max_parts"):
        SmsPolicy(max_parts=max_parts)


def test_check_length_accepts_up_to_max_parts() -> None:
    """3 parts of UCS-2 is 201 units: accepted, and the shape is returned."""
    assert check_length(CHINESE * 201, POLICY) == SmsShape("UCS-2", 201, 3)


def test_check_length_error_says_characters_units_and_parts() -> None:
    """One unit past the cap: the message says how long it is and what is allowed."""
    with pytest.raises(TemplateError) as caught:
        check_length(CHINESE * 200 + EMOJI, POLICY)
    assert str(caught.value) == (
        "message: too long, 201 characters (202 UCS-2 units) take 4 parts, at most 3 allowed (201 units)"
    )
    with pytest.raises(TemplateError, match=r"161 characters \(161 GSM-7 units\) take 2 parts, at most 1"):
        check_length("a" * 161, SmsPolicy(max_parts=1))


# --- opt-out replies ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    ["T", "t", " Ｔ ", "TD。", "td!", "退订", "退订。", "取消", "退", "0000", "００００", "Stop", "STOP!!",
     "unsubscribe", "N", "\u200bT\n"],
)
def test_opt_out_replies(reply: str) -> None:
    """Case, full-width forms, whitespace and punctuation do not hide an opt-out."""
    assert is_opt_out(reply)


@pytest.mark.parametrize(
    "reply", ["回T退订", "Thanks", "TT", "不要退订", "stop it", "好的", "", "  。", "T 谢谢", "00000", "OK"]
)
def test_longer_replies_are_not_opt_outs(reply: str) -> None:
    """Only a reply that is nothing but an opt-out word counts; our own note quoted is not."""
    assert not is_opt_out(reply)


def test_opt_out_words_are_stored_normalised() -> None:
    """The listed words, upper-case; each is an opt-out in lower case too."""
    assert {"T", "TD", "N", "STOP", "UNSUBSCRIBE", "退订", "取消", "退", "0000"} == OPT_OUT_WORDS
    for word in OPT_OUT_WORDS:
        assert word == word.upper()
        assert is_opt_out(word.lower())


# --- SIP headers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "user"),
    [
        ('"Zhang" <sip:13900000017@10.0.0.5:5060;transport=udp>', "13900000017"),
        ('"Zhang" <sip:13900000017@10.0.0.5:5060;transport=udp>;tag=as5f3', "13900000017"),
        ("sip:10690000@h", "10690000"),
        ("sip:10690000@h;tag=1", "10690000"),
        ("tel:+8613900000017", "+8613900000017"),
        ("<tel:+8613900000017;phone-context=+86>", "+8613900000017"),
        ("Zhang San <SIPS:8001@pbx.example.com>", "8001"),
        ('"a <b> \\" c" <sip:%2B8613900000017@h>', "+8613900000017"),
        ("<sip:8001;user=phone@h>", "8001"),
        ("<sip:8001:secret@h>", "8001"),
    ],
)
def test_sip_user_takes_the_number(header: str, user: str) -> None:
    """The number is the URI's user part, whatever display name or parameters surround it."""
    assert sip_user(header) == user


@pytest.mark.parametrize(
    "header",
    ["<sip:host>", "sip:host", "garbage", "", "<>", "<sip:@h>", "<sip:1@>", "<sip:1@h", '"unterminated <sip:1@h>',
     '"Zhang" sip:1@h', "http://1@h", "mailto:a@b", "tel:", "sip 1@h"],
)
def test_sip_user_none_without_a_user(header: str) -> None:
    """No sip/sips/tel URI, or one without a user: None rather than a wrong number."""
    assert sip_user(header) is None


def test_only_mobiles_take_a_text() -> None:
    """Chinese mobiles and numbers abroad; not landlines, 400/800 or short service numbers."""
    from callcenter.sms.text import is_mobile

    assert is_mobile("13900000001") and is_mobile("19912345678") and is_mobile("+447700900123")
    for number in ("02012345678", "4001234567", "12345", "10690000", "12900000001", "+86"):
        assert not is_mobile(number), number
