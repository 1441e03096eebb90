"""Pattern recognizers: a cheap regex finds candidates, a validator (checksum, numbering rules, or
required context words) decides. Validators come from well-kept libraries where one exists
(`python-stdnum` for Luhn/IBAN/SSN, `phonenumbers` for phone numbers, `ipaddress` for IPs).

Every recognizer is a pure function ``(text) -> list[Finding]``; nothing here holds state, so a
:class:`~tierwise_guardrails.pii.detector.PiiDetector` can share them between threads.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Iterable

import phonenumbers
from stdnum import iban as std_iban
from stdnum import luhn as std_luhn
from stdnum.us import ssn as std_ssn

from tierwise_guardrails.findings import Finding

Recognizer = Callable[[str], list[Finding]]

_CONTEXT_WINDOW = 48  # characters before a candidate searched for context words


def _context_before(text: str, start: int, window: int = _CONTEXT_WINDOW) -> str:
    return text[max(0, start - window) : start].lower()


# --- e-mail --------------------------------------------------------------------------------
_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)


def find_emails(text: str) -> list[Finding]:
    out = []
    for m in _EMAIL.finditer(text):
        local = m.group(0).split("@", 1)[0]
        if local.startswith(".") or local.endswith(".") or ".." in local:
            continue
        out.append(Finding("EMAIL_ADDRESS", m.start(), m.end(), 1.0, "regex+rfc5322-subset"))
    return out


# --- payment cards (Luhn + issuer prefix) --------------------------------------------------
_CARD_RUN = re.compile(r"(?<![\w-])\d+(?:[ -]\d+)*(?![\w-])")
_CARD_PREFIX = re.compile(r"^(?:4|5[1-5]|2[2-7]|3[47]|3[068]|6(?:011|5|4[4-9]|22)|35|62|81|50|5[6-9]|6[3-9])")


def _valid_card(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and len(set(digits)) >= 2 and bool(_CARD_PREFIX.match(digits)) and std_luhn.is_valid(digits)


def find_cards(text: str) -> list[Finding]:
    """Digit runs (groups separated by single spaces/dashes); a run may hold a card number next to
    other numbers, so every contiguous group window of 13–19 digits is validated. Overlapping
    valid windows are all returned; the detector's overlap resolution keeps the best."""
    out = []
    for m in _CARD_RUN.finditer(text):
        run = m.group(0)
        groups = [(g.start(), g.end()) for g in re.finditer(r"\d+", run)]
        if sum(e - s for s, e in groups) < 13:
            continue
        for i in range(len(groups)):
            n = 0
            for j in range(i, len(groups)):
                n += groups[j][1] - groups[j][0]
                if n > 19:
                    break
                if n >= 13 and _valid_card(re.sub(r"[ -]", "", run[groups[i][0] : groups[j][1]])):
                    out.append(Finding("CREDIT_CARD", m.start() + groups[i][0], m.start() + groups[j][1], 1.0, "regex+luhn"))
    return out


# --- IBAN (ISO 13616 mod-97 + per-country length, via stdnum) ------------------------------
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,4})?(?![A-Za-z0-9])")


def find_ibans(text: str) -> list[Finding]:
    out = []
    for m in _IBAN.finditer(text):
        cand = m.group(0)
        # The optional trailing group can swallow a following word; shrink until valid.
        while cand:
            if std_iban.is_valid(cand):
                out.append(Finding("IBAN_CODE", m.start(), m.start() + len(cand), 1.0, "regex+mod97"))
                break
            cut = cand.rfind(" ")
            if cut < 15:
                break
            cand = cand[:cut]
    return out


# --- US SSN (area/group/serial rules, via stdnum) ------------------------------------------
_SSN = re.compile(r"(?<![\w-])(\d{3})([- .]?)(\d{2})\2(\d{4})(?![\w-])")
_SSN_CONTEXT = ("ssn", "social security", "social sec", "ss#", "ss #", "tax id", "taxpayer")


def find_ssns(text: str) -> list[Finding]:
    out = []
    for m in _SSN.finditer(text):
        digits = m.group(1) + m.group(3) + m.group(4)
        if not std_ssn.is_valid(digits) or len(set(digits)) == 1:
            continue
        ctx = any(w in _context_before(text, m.start()) for w in _SSN_CONTEXT)
        if m.group(2) == "-" or ctx:
            out.append(Finding("US_SSN", m.start(), m.end(), 0.95 if ctx else 0.85, "regex+ssn-rules"))
    return out


# --- IP addresses --------------------------------------------------------------------------
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")


def find_ips(text: str) -> list[Finding]:
    out = []
    for rx in (_IPV4, _IPV6):
        for m in rx.finditer(text):
            cand = m.group(0)
            if rx is _IPV6 and cand.count(":") < 2:
                continue
            try:
                ipaddress.ip_address(cand)
            except ValueError:
                continue
            if cand in ("::", "0.0.0.0"):
                continue
            out.append(Finding("IP_ADDRESS", m.start(), m.end(), 0.95, "regex+ipaddress"))
    return out


# --- phone numbers (libphonenumber) --------------------------------------------------------
_PHONE = re.compile(r"(?<![\w+])(?:\+|00)?\(?\d[\d().\- ]{5,20}\d(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?![\w])")
_PHONE_CONTEXT = ("phone", "call", "tel", "mobile", "cell", "fax", "whatsapp", "number", "contact", "reach")
_PHONE_REGIONS = ("US", "GB", "DE", "FR", "IN", "BR", "IL", "AU")


def _parse_phone(cand: str):
    if cand.startswith(("+", "00")):
        try:
            return phonenumbers.parse("+" + cand[2:] if cand.startswith("00") else cand, None)
        except phonenumbers.NumberParseException:
            return None
    for region in _PHONE_REGIONS:
        try:
            num = phonenumbers.parse(cand, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(num):
            return num
    return None


def find_phones(text: str) -> list[Finding]:
    out = []
    for m in _PHONE.finditer(text):
        cand = m.group(0).strip()
        digits = sum(c.isdigit() for c in cand)
        if digits < 7 or digits > 17:
            continue
        # Dates and versions look like digit runs: reject dd/mm/yyyy-ish and dotted quads.
        if re.fullmatch(r"\d{1,4}[-./]\d{1,2}[-./]\d{1,4}", cand) or re.fullmatch(r"(?:\d{1,3}\.){3}\d{1,3}", cand):
            continue
        num = _parse_phone(cand)
        ctx = any(w in _context_before(text, m.start()) for w in _PHONE_CONTEXT)
        if num is not None and phonenumbers.is_valid_number(num):
            out.append(Finding("PHONE_NUMBER", m.start(), m.start() + len(m.group(0).rstrip()), 0.9 if ctx else 0.75, "regex+libphonenumber"))
        elif num is not None and ctx and phonenumbers.is_possible_number(num):
            out.append(Finding("PHONE_NUMBER", m.start(), m.start() + len(m.group(0).rstrip()), 0.6, "regex+libphonenumber+context"))
        elif num is None and ctx and (cand.startswith("(") or "-" in cand or "." in cand) and 10 <= digits <= 15:
            # Formatted like a phone number and introduced as one, but not a valid plan number
            # (fictional 555 numbers, unassigned area codes): still personal contact data.
            out.append(Finding("PHONE_NUMBER", m.start(), m.start() + len(m.group(0).rstrip()), 0.5, "regex+context"))
    return out


# --- cloud credentials and API keys ---------------------------------------------------------
_SECRET_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("AWS_ACCESS_KEY_ID", re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}(?![A-Z0-9])")),
    ("GITHUB_TOKEN", re.compile(r"(?<![\w])(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{60,255})(?![\w])")),
    ("SLACK_TOKEN", re.compile(r"(?<![\w])xox[abposr]-[A-Za-z0-9-]{10,72}(?![\w])")),
    ("OPENAI_API_KEY", re.compile(r"(?<![\w-])sk-(?:proj-|svcacct-)?[A-Za-z0-9_-]{20,200}(?![\w-])")),
    ("GOOGLE_API_KEY", re.compile(r"(?<![\w-])AIza[0-9A-Za-z_-]{35}(?![\w-])")),
    ("STRIPE_KEY", re.compile(r"(?<![\w])(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,99}(?![\w])")),
    ("JWT", re.compile(r"(?<![\w-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}(?![\w-])")),
    ("PRIVATE_KEY", re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----[\s\S]{0,8192}?-----END (?:[A-Z]+ )?PRIVATE KEY-----")),
)
# "aws_secret_access_key = ...", "api_key: ...", "password=..." followed by a high-entropy value.
_ASSIGNED_SECRET = re.compile(
    r"(?i)(?:aws_secret_access_key|secret[_-]?key|api[_-]?key|access[_-]?token|auth[_-]?token|client[_-]?secret|password|passwd)"
    r"[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9/+_.=-]{12,200})"
)


def _entropy_bits_per_char(s: str) -> float:
    counts: dict[str, int] = {}
    for ch in s:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def find_secrets(text: str) -> list[Finding]:
    out = []
    for kind, rx in _SECRET_PATTERNS:
        for m in rx.finditer(text):
            out.append(Finding("CREDENTIAL", m.start(), m.end(), 1.0, f"regex:{kind}"))
    for m in _ASSIGNED_SECRET.finditer(text):
        val = m.group(1)
        if _entropy_bits_per_char(val) >= 3.0 and any(c.isdigit() for c in val):
            out.append(Finding("CREDENTIAL", m.start(1), m.end(1), 0.8, "regex:assigned-secret+entropy"))
    return out


# --- dates of birth (a date is PII only when introduced as a birth date) -------------------
_DATE = re.compile(
    r"(?i)(?<!\w)(?:\d{4}-\d{2}-\d{2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|"
    r"(?:\d{1,2}(?:st|nd|rd|th)?\s+)?(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4}|"
    r"\d{1,2}(?:st|nd|rd|th)?\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?,?\s+\d{4})(?!\w)"
)
_DOB_CONTEXT = re.compile(r"(?i)\b(?:born|birth|dob|d\.o\.b\.?|birthday|date of birth|geboren|né|née)\b")


def find_dobs(text: str) -> list[Finding]:
    out = []
    for m in _DATE.finditer(text):
        if _DOB_CONTEXT.search(_context_before(text, m.start(), 40)):
            out.append(Finding("DATE_OF_BIRTH", m.start(), m.end(), 0.9, "regex+context"))
    return out


# --- medical record numbers (context required: the number format is hospital-specific) ----
_MRN = re.compile(
    r"(?i)\b(?:mrn|medical record(?:\s+(?:number|no\.?|num|#))?|patient\s+(?:id|number|no\.?)|chart\s+(?:number|no\.?|#))"
    r"\s*(?:is|:|#|=)?\s*#?\s*([A-Z0-9][A-Z0-9-]{4,15})\b"
)


def find_mrns(text: str) -> list[Finding]:
    out = []
    for m in _MRN.finditer(text):
        if any(c.isdigit() for c in m.group(1)):
            out.append(Finding("MEDICAL_RECORD_NUMBER", m.start(1), m.end(1), 0.9, "regex+context"))
    return out


PATTERN_RECOGNIZERS: dict[str, Recognizer] = {
    "EMAIL_ADDRESS": find_emails,
    "CREDIT_CARD": find_cards,
    "IBAN_CODE": find_ibans,
    "US_SSN": find_ssns,
    "IP_ADDRESS": find_ips,
    "PHONE_NUMBER": find_phones,
    "CREDENTIAL": find_secrets,
    "DATE_OF_BIRTH": find_dobs,
    "MEDICAL_RECORD_NUMBER": find_mrns,
}


def run_patterns(text: str, entities: Iterable[str]) -> list[Finding]:
    out: list[Finding] = []
    for name in entities:
        rec = PATTERN_RECOGNIZERS.get(name)
        if rec is not None:
            out.extend(rec(text))
    return out
