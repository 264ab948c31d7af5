#!/usr/bin/env python3
"""Writes the malformed/unusual CSV corpus and its manifest, expected.json.

Each file is tiny and Telco-shaped (or a variant). The manifest says what scoring it must do;
tests/corpus.rs checks every entry through `score_csv`. Run from this directory:
`python3 make_corpus.py`. The files are committed; rerunning reproduces them byte for byte.
"""
import json, os, random

COLS = ["customerID", "gender", "SeniorCitizen", "Partner", "Dependents", "tenure",
        "PhoneService", "MultipleLines", "InternetService", "OnlineSecurity", "OnlineBackup",
        "DeviceProtection", "TechSupport", "StreamingTV", "StreamingMovies", "Contract",
        "PaperlessBilling", "PaymentMethod", "MonthlyCharges", "TotalCharges"]
VALS = ["ID", "Female", "0", "Yes", "No", "5", "Yes", "No", "Fiber optic", "No", "No", "No",
        "No", "Yes", "Yes", "Month-to-month", "Yes", "Electronic check", "85.5", "420.3"]


def row(id_="A1", d=",", **over):
    v = dict(zip(COLS, VALS))
    v["customerID"] = id_
    v.update(over)
    return d.join(v[c] for c in COLS)


def header(d=",", cols=COLS):
    return d.join(cols)


def text(lines, eol="\n"):
    return eol.join(lines) + eol


entries = []


def add(name, data, about, **expect):
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(name, "wb") as f:
        f.write(data)
    e = {"file": name, "about": about}
    e.update(expect)
    entries.append(e)


H = header()
ok3 = [row("A1"), row("A2"), row("A3")]

# --- encodings -------------------------------------------------------------------------------
add("basic.csv", text([H] + ok3), "plain UTF-8, LF", rows_scored=3, rows_rejected=0,
    encoding="UTF-8", delimiter=",")
add("utf8_bom.csv", b"\xef\xbb\xbf" + text([H] + ok3[:2]).encode(), "UTF-8 with BOM",
    rows_scored=2, rows_rejected=0, encoding="UTF-8 with BOM")
add("utf8_bom_crlf.csv", b"\xef\xbb\xbf" + text([H] + ok3, "\r\n").encode(),
    "UTF-8 BOM and CRLF (Excel 'CSV UTF-8')", rows_scored=3, rows_rejected=0)
add("utf16le_bom_tab.txt",
    b"\xff\xfe" + text([header("\t")] + [row("Ü1", "\t"), row("A2", "\t")], "\r\n").encode("utf-16-le"),
    "Excel 'Unicode Text': UTF-16LE with BOM, tab-delimited, CRLF", rows_scored=2,
    rows_rejected=0, encoding="UTF-16LE", delimiter="tab", first_id="Ü1")
add("utf16be_bom.csv", b"\xfe\xff" + text([H] + ok3).encode("utf-16-be"), "UTF-16BE with BOM",
    rows_scored=3, rows_rejected=0, encoding="UTF-16BE")
add("utf16le_no_bom.csv", text([H] + ok3).encode("utf-16-le"),
    "UTF-16LE without BOM, detected from NUL bytes (never a NUL in a column name)",
    rows_scored=3, rows_rejected=0, encoding="UTF-16LE")
add("windows1252.csv", text([H, row("Müller-€"), row("A2")]).encode("cp1252"),
    "windows-1252 (Excel 'CSV (Comma delimited)' on Windows): ü and € decoded",
    rows_scored=2, rows_rejected=0, encoding="windows-1252", first_id="Müller-€")
add("windows1252_header.csv", text([H + ",Notés", row("A1") + ",caf\u00e9"]).encode("cp1252"),
    "windows-1252 in an extra column's name: ignored and listed readably",
    rows_scored=1, rows_rejected=0, ignored=["Notés"])
add("nul_in_header.csv", text([H.replace("gender", "gender\0") + ",x", row() + ",1"]),
    "stray NUL bytes in a header name are dropped", rows_scored=1, rows_rejected=0)
add("only_bom.csv", b"\xef\xbb\xbf", "nothing but a byte-order mark", error="Empty")
add("empty.csv", b"", "zero bytes", error="Empty")
add("blank_lines_only.csv", b"\n\r\n\n", "only line breaks", error="Empty")

# --- dialects --------------------------------------------------------------------------------
add("semicolon_decimal_comma.csv",
    text([header(";"), row("A1", ";", MonthlyCharges="85,50", TotalCharges="1.049,34"),
          row("A2", ";", MonthlyCharges="29,85", TotalCharges="29,85 €")]),
    "European Excel: ';' delimiter, decimal comma, '.' thousands", rows_scored=2,
    rows_rejected=0, delimiter=";")
add("semicolon_decimal_point.csv", text([header(";"), row("A1", ";")]),
    "';' delimiter with decimal points", rows_scored=1, rows_rejected=0, delimiter=";")
add("excel_sep_line.csv", text(["sep=;", header(";"), row("A1", ";", MonthlyCharges="85,5")]),
    "Excel's 'sep=;' hint line is obeyed and skipped", rows_scored=1, rows_rejected=0,
    delimiter=";")
add("tab.tsv", text([header("\t")] + [row(f"A{i}", "\t") for i in range(3)]), "tab-delimited",
    rows_scored=3, rows_rejected=0, delimiter="tab")
add("pipe.csv", text([header("|")] + [row(f"A{i}", "|") for i in range(2)]), "pipe-delimited",
    rows_scored=2, rows_rejected=0, delimiter="|")
add("crlf.csv", text([H] + ok3, "\r\n"), "CRLF line endings", rows_scored=3, rows_rejected=0)
add("cr_only.csv", text([H] + ok3, "\r"), "old Mac CR-only line endings", rows_scored=3,
    rows_rejected=0)
add("mixed_line_endings.csv", (H + "\r\n" + row("A1") + "\n" + row("A2", TotalCharges="x") + "\r" + row("A3") + "\r\n"),
    "mixed CRLF/LF/CR; the bad row is numbered 2", rows_scored=2, rows_rejected=1,
    issue_rows=[2], contains=["TotalCharges"])
add("quoted_newlines.csv",
    text([H, row('"multi\r\nline\nid"'), row("A2"), row("A3", TotalCharges="oops")], "\r\n"),
    "a quoted id spanning lines: row numbers count records, not lines", rows_scored=2,
    rows_rejected=1, issue_rows=[3], first_id="multi\r\nline\nid")
add("quoted_delimiters_quotes.csv",
    text([H, row('"Smith, ""Jr"""', TotalCharges='"1,049.34"'), row("A2")]),
    "quoted fields with delimiters and escaped quotes", rows_scored=2, rows_rejected=0,
    first_id='Smith, "Jr"')
add("quoted_header.csv", text([",".join(f'"{c}"' for c in COLS), row()]),
    "every header name quoted", rows_scored=1, rows_rejected=0)
add("trailing_delimiter.csv", text([H + ",", row("A1") + ",", row("A2") + ","]),
    "every line ends with a delimiter: an unnamed empty last column", rows_scored=2,
    rows_rejected=0, ignored=["(column 21)"])
add("blank_lines_between.csv", text([H, "", row("A1"), "", "", row("A2"), ""]),
    "blank lines are not records", rows_scored=2, rows_rejected=0, rows_total=2)
add("no_trailing_newline.csv", (H + "\n" + row("A1")), "no line break after the last row",
    rows_scored=1, rows_rejected=0)

# --- row shapes ------------------------------------------------------------------------------
add("extra_field.csv", text([H, row("A1"), row("A2") + ",surplus", row("A3")]),
    "a row with more fields than the header is rejected with the count", rows_scored=2,
    rows_rejected=1, issue_rows=[2], contains=["21 fields but the header has 20"])
add("short_row_notes.csv", text([H + ",Notes", row("A1") + ",vip", row("A2")]),
    "a row without its trailing non-feature column is scored", rows_scored=2, rows_rejected=0)
add("short_row_feature.csv", text([H, row("A1"), row("A2").rsplit(",", 1)[0]]),
    "a row without a trailing feature is rejected naming it", rows_scored=1, rows_rejected=1,
    issue_rows=[2], contains=["TotalCharges", "19 fields"])
add("empty_row.csv", text([H, row("A1"), "," * 19, row("A3"), " , ,", ""]),
    "records of empty fields (Excel's ghost rows) are skipped like blank lines, and counted",
    rows_scored=2, rows_rejected=0, rows_skipped_empty=2, rows_total=4, issue_rows=[])
add("unterminated_quote.csv", text([H, row("A1"), row('"A2'), row("A3"), row("A4")]),
    "an unclosed quote would swallow the rest of the file: its row is rejected naming the line, "
    "and the rows after it are read", rows_scored=3, rows_rejected=1, rows_total=4,
    issue_rows=[2], contains=["line 3", "never closed", "customerID"])
add("unterminated_quote_at_end.csv", text([H, row("A1"), row("A2", TotalCharges='"420.3')]),
    "an unclosed quote in the last row reaches the end of the file: that row is rejected",
    rows_scored=1, rows_rejected=1, rows_total=2, issue_rows=[2],
    contains=["line 3", "end of the file", "TotalCharges"])
add("literal_quote.csv", text([H + ",Notes", row("A1") + ',55" TV', row("A2") + ",ok"]),
    "a quote inside an unquoted field is an ordinary character", rows_scored=2,
    rows_rejected=0)

# --- values ----------------------------------------------------------------------------------
add("repeated_header.csv", text([H, row("A1"), H, row("A2")]),
    "two exports joined: the repeated header is rejected as such", rows_scored=2,
    rows_rejected=1, issue_rows=[2], contains=["repeats the header"])
add("totals_row.csv",
    text([H, row("A1"), row("A2"), "Total" + "," * 17 + ",171.0,840.6"]),
    "a spreadsheet totals row (mostly blank) is rejected, not scored as a customer",
    rows_scored=2, rows_rejected=1, issue_rows=[3], contains=["17 of the 19 feature values are missing"])
add("missing_tokens.csv",
    text([H] + [row(f"A{i}", TotalCharges=t) for i, t in enumerate([" ", "", "NA", "N/A", "null", "-", "n/a", "NULL"])]),
    "blank, NA, N/A, null and - are missing TotalCharges", rows_scored=8, rows_rejected=0,
    column_missing={"TotalCharges": 8})
add("nan_inf.csv",
    text([H, row("A1", TotalCharges="NaN"), row("A2", TotalCharges="inf"),
          row("A3", TotalCharges="-Infinity"), row("A4")]),
    "NaN and infinities are rejected with row and column", rows_scored=1, rows_rejected=3,
    issue_rows=[1, 2, 3], contains=["NaN", "TotalCharges"], column_invalid={"TotalCharges": 3})
add("overflow.csv", text([H, row("A1", MonthlyCharges="1e999"), row("A2")]),
    "a number beyond f64 is rejected as too large", rows_scored=1, rows_rejected=1,
    contains=["too large", "MonthlyCharges"])
add("thousands_currency.csv",
    text([H, row("A1", TotalCharges='"1,049.34"'), row("A2", MonthlyCharges="$29.85"),
          row("A3", MonthlyCharges="€29.85", TotalCharges='"$1,049.34"'),
          row("A4", MonthlyCharges="£12", TotalCharges="1 049.5"),
          row("A5", MonthlyCharges="(5.00)")]),
    "thousands separators, currency symbols, accounting negatives", rows_scored=5,
    rows_rejected=0)
add("bad_numbers.csv",
    text([H, row("A1", tenure="five"), row("A2", TotalCharges='"12,34"'), row("A3")]),
    "text and ambiguous grouping in numeric columns are rejected", rows_scored=1,
    rows_rejected=2, issue_rows=[1, 2], contains=["expected a number", "five"])
add("booleans.csv",
    text([H] + [row(f"A{i}", Partner=p, PaperlessBilling=q) for i, (p, q) in enumerate(
        [("yes", "NO"), ("Y", "n"), ("TRUE", "false"), ("1", "0"), ("t", "F")])]),
    "booleans as Yes/No, Y/N, true/false, 1/0 in any case", rows_scored=5, rows_rejected=0)
add("bad_boolean.csv", text([H, row("A1", Partner="maybe"), row("A2")]),
    "an unreadable boolean is rejected", rows_scored=1, rows_rejected=1,
    contains=["expected Yes or No", "Partner", "maybe"])
add("category_spellings.csv",
    text([H, row("A1", Contract="month to month", InternetService="FIBER-OPTIC",
                 PaymentMethod="credit card automatic"),
          row("A2", Contract=" one YEAR ", PaymentMethod='"Bank Transfer, automatic"')]),
    "category levels match ignoring case, spacing and punctuation", rows_scored=2,
    rows_rejected=0, warnings=0)
add("unseen_category.csv", text([H, row("A1", Contract="Weekly"), row("A2")]),
    "an unseen category is scored as missing with a warning", rows_scored=2, rows_rejected=0,
    warnings=1, contains=["Weekly", "Contract"], column_unseen={"Contract": 1})
add("ids_kept.csv", text([H, row("00042"), row(" 7 ")]),
    "customer ids are kept as text exactly (leading zeros)", rows_scored=2, rows_rejected=0,
    first_id="00042")
add("formula_ids.csv", text([H, row("=HYPERLINK(1)"), row("+1"), row("@x")]),
    "ids that look like formulas are kept raw in the scored output and escaped in a file "
    "written for a spreadsheet (OWASP CSV injection)",
    rows_scored=3, rows_rejected=0, first_id="=HYPERLINK(1)", first_id_escaped="'=HYPERLINK(1)")
add("spaces_everywhere.csv",
    text([",".join(f" {c} " for c in COLS), ",".join(f" {v} " for v in row("A1").split(","))]),
    "spaces around names and values are trimmed", rows_scored=1, rows_rejected=0)
add("many_bad_cells.csv", text([H, row("A1", tenure="x", MonthlyCharges="y", TotalCharges="z"), row("A2")]),
    "several bad cells in one row: the first is named, the rest counted", rows_scored=1,
    rows_rejected=1, contains=["tenure", "2 more"])

# --- columns ---------------------------------------------------------------------------------
cols = COLS[:]
random.Random(7).shuffle(cols)
v = dict(zip(COLS, row("A1").split(",")))
add("reordered_columns.csv", text([",".join(cols), ",".join(v[c] for c in cols)]),
    "column order does not matter", rows_scored=1, rows_rejected=0)
norm = {"customerID": "Customer ID", "TotalCharges": "total_charges",
        "MonthlyCharges": "MONTHLY CHARGES", "PaymentMethod": "Payment-Method",
        "SeniorCitizen": "Sénior Citizen"}
add("normalised_headers.csv", text([header(cols=[norm.get(c, c) for c in COLS]), row()]),
    "names match ignoring case, spaces, punctuation and accents", rows_scored=1,
    rows_rejected=0)
saas = {"customerID": "user_id", "tenure": "months_subscribed", "MonthlyCharges": "mrr",
        "TotalCharges": "total_revenue", "Contract": "plan_type"}
add("saas_aliases.csv", text([header(cols=[saas.get(c, c) for c in COLS]), row("U-1")]),
    "SaaS names map through the alias table", rows_scored=1, rows_rejected=0, first_id="U-1")
add("tenure_in_days.csv",
    text([header(cols=["account_age_days" if c == "tenure" else c for c in COLS]),
          row("A1", tenure="152")]),
    "a tenure given in days is converted to months", rows_scored=1, rows_rejected=0)
add("fuzzy_headers.csv",
    text([header(cols=[{"SeniorCitizen": "SeniorCitzen", "TotalCharges": "TotalCharge"}.get(c, c) for c in COLS]), row()]),
    "typos in names are matched fuzzily", rows_scored=1, rows_rejected=0)
add("billing_cycle_synonyms.csv",
    text([header(cols=["billing_cycle" if c == "Contract" else c for c in COLS]),
          row("A1", Contract="annual"), row("A2", Contract="Monthly"),
          row("A3", Contract="2 years")]),
    "a billing_cycle column and its monthly/annual spellings map onto Contract, each alias listed",
    rows_scored=3, rows_rejected=0, warnings=3)
add("missing_column.csv", text([header(cols=COLS[:-1]), row().rsplit(",", 1)[0]]),
    "an absent feature column is scored as missing in every row (flagged), not refused",
    rows_scored=1, rows_rejected=0, column_missing={"TotalCharges": 1})
add("missing_column_suggestion.csv",
    text([header(cols=COLS[:-1] + ["Total"]), row()]),
    "an absent feature column beside a similar one: scored as missing, the similar one ignored",
    rows_scored=1, rows_rejected=0, ignored=["Total"])
add("too_few_columns.csv",
    text([header(cols=COLS[:10] + ["Total"]), ",".join(row().split(",")[:10] + ["1"])]),
    "more than half of the inputs absent is refused, naming them and the closest column",
    error="MissingColumns", contains=["TotalCharges (closest: Total)", "at most 9 may be absent"])
add("duplicate_columns.csv", text([H + ",Monthly Charges", row() + ",85.5"]),
    "two columns for one feature is an error naming both", error="DuplicateColumns",
    contains=['"MonthlyCharges" (column 19) and "Monthly Charges" (column 21)'])
add("duplicate_aliases.csv",
    text([header(cols=[("mrr,monthly_fee" if c == "MonthlyCharges" else c) for c in COLS]),
          row(MonthlyCharges="85.5,85.5")]),
    "two aliases for one feature is an error naming both", error="DuplicateColumns",
    contains=['"mrr" (column 19) and "monthly_fee" (column 20)'])

# --- whole-file problems ---------------------------------------------------------------------
add("header_only.csv", text([H]), "a header and no rows", error="NoUsableRows",
    contains=["no customer rows"])
add("no_header.csv", text([",".join(str(i) for i in range(20)), "1," * 19 + "1"]),
    "numbers where the header should be", error="NoHeader")
add("headerless_data.csv", text([row("7590-VHVEG"), row("5575-GNVDE")]),
    "a file exported without its header row", error="NoHeader", contains=["header"])
add("all_rows_bad.csv", text([H, row("A1", TotalCharges="x"), row("A2", tenure="y")]),
    "nothing scorable: the first problems are quoted", error="NoUsableRows",
    contains=["none of the 2 rows", "row 1 (customer A1)"])
add("xlsx_renamed.csv", b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(40)),
    "an Excel workbook saved with a .csv name", error="NotCsv", contains=["Excel workbook"])
add("pdf.csv", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "a PDF", error="NotCsv", contains=["PDF"])
add("binary_nuls.csv", bytes([0, 1, 2, 3, 0, 0, 7, 0, 0, 0, 200, 0, 0, 13, 0, 10]) * 4,
    "binary data", error="NotCsv", contains=["binary"])
add("html_error_page.csv", text(["<html><body><h1>502 Bad Gateway</h1></body></html>"]),
    "an HTML page saved as CSV", error="MissingColumns")
add("field_too_long.csv", text([H, row("A1", TotalCharges="9" * 300)]),
    "a field over the field-length limit (here 200 bytes)", error="FieldTooLong",
    limits={"max_field_bytes": 200}, contains=["row 1", "TotalCharges", "200-byte"])
add("too_many_columns.csv", text([H, row()]), "more columns than the limit (here 10)",
    error="TooManyColumns", limits={"max_columns": 10}, contains=["20 columns", "at most 10"])
add("too_many_rows.csv", text([H] + ok3), "more rows than the limit (here 2)",
    error="TooManyRows", limits={"max_rows": 2}, contains=["more than 2"])

with open("expected.json", "w") as f:
    json.dump(entries, f, indent=1, ensure_ascii=False)
    f.write("\n")
print(len(entries), "files")
