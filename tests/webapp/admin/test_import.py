"""Spreadsheet import: every kind of bad cell, all-or-nothing writes, re-imports, encodings, hostile files."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from openpyxl import load_workbook
from sqlalchemy import func, select, update

from tests.conftest import make_school
from tests.webapp.factories import xlsx
from webapp.admin.importer import ImportResult, import_file, parse_day, parse_slot, template_file
from webapp.admin.spreadsheet import MAX_ROWS
from webapp.extensions import db
from webapp.models import (
    Activity,
    AuditLog,
    ClassTeacher,
    Pupil,
    School,
    Session,
    Teacher,
    TeacherAvailability,
    Term,
)

PUPIL_HEADER = ["学号", "姓名", "年级", "班级", "家庭编号", "优先级"]


def csv_bytes(rows: list[list[Any]], encoding: str = "utf-8") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode(encoding)


@pytest.fixture
def school(app: Flask) -> Iterator[School]:
    """A school with its term, inside a Chinese-language request context (as an admin's upload runs)."""
    with app.test_request_context("/admin/import/pupils"):
        yield make_school()


def term_of(school: School) -> Term:
    return school.terms[0]


def run(kind: str, data: bytes, school: School, filename: str = "data.xlsx") -> ImportResult:
    return import_file(kind, filename, data, school, term_of(school))


def count(model: Any, school: School) -> int:
    query = select(func.count()).select_from(model).where(model.school_id == school.id)
    return int(db.session.scalar(query) or 0)


def messages(result: ImportResult) -> list[str]:
    return [problem.text for problem in result.problems]


# ------------------------------------------------------------------------------------------ pupils


def test_pupils_from_xlsx_are_created(school: School) -> None:
    rows = [PUPIL_HEADER, ["2024001", "张三", 3, "3-1", "F1", 1], ["2024002", "李四", "4", "4-2", None, None]]
    result = run("pupils", xlsx(rows), school)
    assert result.ok, messages(result)
    assert (result.rows, result.created, result.updated) == (2, 2, 0)
    zhang = db.session.scalar(select(Pupil).where(Pupil.number == "2024001"))
    assert zhang is not None and (zhang.name, zhang.grade, zhang.class_name, zhang.family_code,
                                  zhang.priority) == ("张三", 3, "3-1", "F1", 1)
    li = db.session.scalar(select(Pupil).where(Pupil.number == "2024002"))
    assert li is not None and li.family_code is None and li.priority == 0


def test_missing_required_column(school: School) -> None:
    result = run("pupils", xlsx([["学号", "姓名"], ["1", "张三"]]), school)
    assert messages(result) == ["缺少必填列「年级」（也可用英文表头「grade」）。"]


def test_empty_required_cell(school: School) -> None:
    result = run("pupils", xlsx([PUPIL_HEADER, ["1", "张三", 3], ["2", None, 3]]), school)
    assert messages(result) == ["第 3 行，「姓名」列：姓名不能为空。"]


def test_not_a_number(school: School) -> None:
    result = run("pupils", xlsx([PUPIL_HEADER, ["1", "张三", "三年级"]]), school)
    assert messages(result) == ["第 2 行，「年级」列：「三年级」不是整数。"]


def test_out_of_range(school: School) -> None:
    rows = [PUPIL_HEADER] + [[str(i), f"学生{i}", 3] for i in range(3)] + [["9", "王五", 7]]
    result = run("pupils", xlsx(rows), school)
    assert messages(result) == ["第 5 行，「年级」列：年级必须是 1 到 6 的整数。"]


def test_priority_must_be_a_level_of_the_term(school: School) -> None:
    result = run("pupils", xlsx([PUPIL_HEADER, ["1", "张三", 3, "", "", 5]]), school)
    assert messages(result) == ["第 2 行，「优先级」列：优先级必须是 0、1、2 之一。"]


def test_duplicate_id_within_the_file(school: School) -> None:
    result = run("pupils", xlsx([PUPIL_HEADER, ["P100", "张三", 3], ["P100", "李四", 4]]), school)
    assert messages(result) == ["第 3 行，「学号」列：「P100」与第 2 行重复。"]


def test_english_headers_and_english_messages(app: Flask) -> None:
    with app.test_request_context("/", headers={"Cookie": "lang=en"}):
        school = make_school()
        data = csv_bytes([["Pupil number", "Name", "Grade"], ["1", "Tom", 9]])
        result = import_file("pupils", "p.csv", data, school, school.terms[0])
        assert messages(result) == ["Row 2, column “Grade”: Grade must be a whole number from 1 to 6."]


def test_several_errors_at_once_and_nothing_written(school: School) -> None:
    before = count(Pupil, school)
    rows = [PUPIL_HEADER, ["A1", "好学生", 3], ["A2", "", 3], ["A3", "王", "x"], ["A1", "重复", 0]]
    result = run("pupils", xlsx(rows), school)
    assert messages(result) == [
        "第 3 行，「姓名」列：姓名不能为空。",
        "第 4 行，「年级」列：「x」不是整数。",
        "第 5 行，「学号」列：「A1」与第 2 行重复。",
        "第 5 行，「年级」列：年级必须是 1 到 6 的整数。",
    ]
    assert count(Pupil, school) == before
    assert db.session.scalar(select(Pupil).where(Pupil.number == "A1")) is None


def test_reimport_updates_instead_of_duplicating(school: School) -> None:
    rows = [PUPIL_HEADER, ["N1", "张三", 3, "3-1"], ["N2", "李四", 4, "4-1"]]
    first = run("pupils", xlsx(rows), school)
    total = count(Pupil, school)
    second = run("pupils", xlsx(rows), school)
    assert (first.created, second.created, second.updated, second.unchanged) == (2, 0, 0, 2)
    assert count(Pupil, school) == total
    rows[1][1] = "张三丰"
    third = run("pupils", xlsx(rows), school)
    assert (third.created, third.updated, third.unchanged) == (0, 1, 1)
    assert db.session.scalar(select(Pupil.name).where(Pupil.number == "N1")) == "张三丰"
    assert count(Pupil, school) == total


def test_csv_utf8_with_bom_and_gbk(school: School) -> None:
    rows = [PUPIL_HEADER, ["C1", "欧阳娜娜", 2, "2-3"]]
    for number, encoding in (("C1", "utf-8-sig"), ("C2", "gbk"), ("C3", "utf-8")):
        rows[1][0] = number
        result = run("pupils", csv_bytes(rows, encoding), school, filename="pupils.csv")
        assert result.ok, (encoding, messages(result))
        assert db.session.scalar(select(Pupil.name).where(Pupil.number == number)) == "欧阳娜娜"


def test_numbers_typed_as_numbers_keep_their_text(school: School) -> None:
    result = run("pupils", xlsx([PUPIL_HEADER, [20240001, "张三", 3.0, 301]]), school)
    assert result.ok, messages(result)
    pupil = db.session.scalar(select(Pupil).where(Pupil.number == "20240001"))
    assert pupil is not None and pupil.grade == 3 and pupil.class_name == "301"


def test_audit_entry_has_counts_only(school: School) -> None:
    """Counts and the file's digest (which file was imported), no personal data."""
    data = xlsx([PUPIL_HEADER, ["Z1", "赵六", 3]])
    run("pupils", data, school)
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "pupils.import"))
    assert entry is not None and entry.school_id == school.id
    assert entry.detail == {"rows": 1, "created": 1, "updated": 0, "unchanged": 0,
                            "sha256": hashlib.sha256(data).hexdigest()}
    assert "赵六" not in repr(entry.detail)


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_template_round_trip(school: School, fmt: str) -> None:
    template = template_file("pupils", fmt)
    if fmt == "xlsx":
        book = load_workbook(io.BytesIO(template))
        sheet = book.worksheets[0]
        assert [c.value for c in sheet[1]] == [*PUPIL_HEADER, "优先群体", "群体证明", "群体有效期至", "在读状态"]
        sheet.append(["T9", "模板生", 1, "1-1", None, 0])
        buffer = io.BytesIO()
        book.save(buffer)
        data = buffer.getvalue()
    else:
        assert template.startswith(b"\xef\xbb\xbf")
        data = template + "T9,模板生,1,1-1,,0\r\n".encode()
    result = run("pupils", data, school, filename=f"filled.{fmt}")
    assert result.ok and result.created == 1, messages(result)


def test_three_thousand_pupils(school: School) -> None:
    rows: list[list[Any]] = [PUPIL_HEADER]
    rows += [[f"B{i:05d}", f"学生{i}", 1 + i % 6, f"{1 + i % 6}-{i % 8 + 1}", f"F{i // 2}", i % 3]
             for i in range(3000)]
    before = count(Pupil, school)
    result = run("pupils", xlsx(rows), school)
    assert result.ok and result.created == 3000, messages(result)[:3]
    assert count(Pupil, school) == before + 3000
    again = run("pupils", csv_bytes(rows, "utf-8-sig"), school, filename="again.csv")
    assert (again.created, again.unchanged) == (0, 3000)


# ------------------------------------------------------------------------------------------ hostile files


def test_not_an_xlsx(school: School) -> None:
    result = run("pupils", b"PK\x03\x04 this is not really a zip archive" * 10, school)
    assert messages(result) == ["这不是可读取的 Excel .xlsx 文件，请另存为 .xlsx 或 .csv 后重试。"]


def test_zip_bomb_is_rejected_before_parsing(school: School) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (51 * 1024 * 1024))
    assert len(buffer.getvalue()) < 1024 * 1024
    result = run("pupils", buffer.getvalue(), school)
    assert messages(result) == ["文件解压后超过 50 MB，无法导入。"]


def test_formula_without_saved_value(school: School) -> None:
    result = run("pupils", xlsx([PUPIL_HEADER, ["F1", "张三", "=1+2"]]), school)
    assert len(result.problems) == 1
    assert result.problems[0].text.startswith("第 2 行，「年级」列：单元格是公式但没有保存计算结果")


def test_too_many_rows(school: School) -> None:
    data = "学号,姓名,年级\n".encode() + b"".join(f"R{i},x,1\n".encode() for i in range(MAX_ROWS + 1))
    result = run("pupils", data, school, filename="big.csv")
    assert messages(result) == ["文件超过 20000 行，请拆分成较小的文件。"]


def test_too_large_old_xls_and_empty_files(school: School) -> None:
    assert messages(run("pupils", b"x" * (5 * 1024 * 1024 + 1), school, "big.csv")) == [
        "文件超过 5 MB，请拆分成较小的文件。"]
    assert "旧版 Excel .xls" in messages(run("pupils", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100,
                                             school, "old.xls"))[0]
    assert messages(run("pupils", b"  \n", school, "empty.csv")) == ["文件是空的。"]
    header_only = run("pupils", "学号,姓名,年级\n".encode(), school, "head.csv")
    assert messages(header_only) == ["文件只有表头，没有数据行。"]


def test_excel_error_value(school: School) -> None:
    result = run("pupils", xlsx([PUPIL_HEADER, ["E1", "张三", "#DIV/0!"]]), school)
    assert messages(result) == ["第 2 行，「年级」列：单元格是 Excel 错误值 #DIV/0!。"]


# ------------------------------------------------------------------------------------------ teachers


TEACHER_HEADER = ["工号", "姓名", "资质", "每周上限", "可用时段"]


def availability(teacher_code: str, term: Term) -> set[tuple[int, str]]:
    teacher = db.session.scalar(select(Teacher).where(Teacher.code == teacher_code))
    assert teacher is not None
    return {(a.day, a.period.code) for a in db.session.scalars(select(TeacherAvailability).where(
        TeacherAvailability.teacher_id == teacher.id, TeacherAvailability.term_id == term.id))}


def test_teachers_with_availability_text(school: School) -> None:
    rows = [TEACHER_HEADER, ["T9", "孙老师", "sports、arts", 4, "周一P1,周一P2，周三P3"],
            ["T1", "李老师", "sports", 6, "1-P1 2-p2"]]
    result = run("teachers", xlsx(rows), school)
    assert result.ok, messages(result)
    assert (result.created, result.updated) == (1, 1)
    term = term_of(school)
    assert availability("T9", term) == {(1, "P1"), (1, "P2"), (3, "P3")}
    assert availability("T1", term) == {(1, "P1"), (2, "P2")}
    teacher = db.session.scalar(select(Teacher).where(Teacher.code == "T9"))
    assert teacher is not None and teacher.qualifications == ["arts", "sports"] and teacher.max_sessions == 4
    again = run("teachers", xlsx(rows), school)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)


def test_unknown_qualification_refused_with_row_column_and_known_tags(school: School) -> None:
    rows = [TEACHER_HEADER, ["T9", "孙老师", "sports、arts", 4, ""], ["T8", "周老师", "sprots", 3, ""],
            ["T7", "钱老师", "arts, 书法", 3, ""]]
    before = count(Teacher, school)
    result = run("teachers", xlsx(rows), school)
    assert not result.ok and count(Teacher, school) == before  # nothing written
    assert messages(result) == [
        "第 3 行，「资质」列：“sprots”：没有活动要求这项资质。已有的资质标签：arts、sports。",
        "第 4 行，「资质」列：“书法”：没有活动要求这项资质。已有的资质标签：arts、sports。",
    ]


def test_unknown_qualification_in_english_and_without_any_known_tag(app: Flask) -> None:
    with app.test_request_context("/admin/import/teachers", headers={"Cookie": "lang=en"}):
        school = make_school()
        result = run("teachers", xlsx([TEACHER_HEADER, ["T9", "孙老师", "sprots", 4, ""]]), school)
        assert messages(result) == ["Row 2, column “资质”: “sprots”: no activity asks for this qualification. "
                                    "Known tags: arts、sports."]
        db.session.execute(update(Activity).values(qualification=None))
        result = run("teachers", xlsx([TEACHER_HEADER, ["T9", "孙老师", "sports", 4, ""]]), school)
        assert messages(result)[0].startswith("Row 2, column “资质”: “sports”: no activity of this school asks "
                                              "for a qualification yet.")


def test_teachers_with_a_grid_of_columns(school: School) -> None:
    rows = [["工号", "姓名", "周一P1", "周一P2", "2-P1"], ["G1", "周老师", "✓", "", "是"],
            ["G2", "吴老师", 1, 0, None]]
    result = run("teachers", xlsx(rows), school)
    assert result.ok, messages(result)
    assert availability("G1", term_of(school)) == {(1, "P1"), (2, "P1")}
    assert availability("G2", term_of(school)) == {(1, "P1")}


def test_teacher_unknown_slot_and_bad_grid_mark(school: School) -> None:
    rows = [["工号", "姓名", "可用时段", "周一P1"], ["G1", "周老师", "周一P9", "maybe"],
            ["G2", "吴老师", "周六P1", ""]]
    result = run("teachers", xlsx(rows), school)
    assert messages(result) == [
        "第 2 行，「可用时段」列：「周一P9」不是“星期+时段”的写法，"
        "例如 周一P1 或 1-P1（时段：P1、P2、P3）。",
        "第 2 行，「周一P1」列：「maybe」无法识别：可用请填 1、是 或 ✓，不可用请留空。",
        "第 3 行，「可用时段」列：「周六P1」不在本学期的服务日（周一、周二、周三、周四、周五）。",
    ]
    assert db.session.scalar(select(Teacher).where(Teacher.code == "G1")) is None


# ------------------------------------------------------------------------------------------ sessions


SESSION_HEADER = ["编号", "活动", "星期", "时段", "教室", "容量", "年级下限", "年级上限", "每位教师学生数",
                  "最少人数"]


def test_sessions_by_code_or_chinese_name(school: School) -> None:
    rows = [SESSION_HEADER, ["N1", "football", "周三", "P2", "操场", 24, 3, 6, 12, 6],
            ["N2", "美术", 4, "p2", "美术室", 15, None, None, None, None]]
    result = run("sessions", xlsx(rows), school)
    assert result.ok, messages(result)
    n2 = db.session.scalar(select(Session).where(Session.code == "N2"))
    assert n2 is not None and n2.activity.code == "art" and n2.day == 4 and n2.period.code == "P2"
    assert (n2.grade_lo, n2.grade_hi, n2.pupils_per_teacher, n2.min_pupils) == (1, 6, 15, 0)


def test_session_unknown_activity_day_and_period(school: School) -> None:
    rows = [SESSION_HEADER, ["N1", "围棋", "周八", "P7", "", 20, 1, 6, 20, 0],
            ["N2", "art", "周六", "P1", "", 20, 5, 2, 20, 0]]
    result = run("sessions", xlsx(rows), school)
    assert messages(result) == [
        "第 2 行，「活动」列：「围棋」不是本学期的活动。现有活动：art（美术）、care（延时托管）、"
        "football（足球）、homework（作业辅导）。",
        "第 2 行，「星期」列：「周八」不是星期，请填 周一 到 周五 或 1 到 5。",
        "第 2 行，「时段」列：「P7」不是本学期的时段。现有时段：P1、P2、P3。",
        "第 3 行，「星期」列：「周六」不是本学期的服务日（周一、周二、周三、周四、周五）。",
        "第 3 行，「年级下限」列：年级下限 5 高于年级上限 2。",
    ]


def test_day_and_slot_parsing() -> None:
    assert [parse_day(t) for t in ("周一", "星期三", "五", "Mon", "friday", "2", "周八", "8", "")] == [
        1, 3, 5, 1, 5, 2, None, None, None]

    class P:
        def __init__(self, code: str) -> None:
            self.code = code

    periods: dict[str, Any] = {"p1": P("P1")}
    parsed = [parse_slot(t, periods) for t in ("周一P1", "1-P1", "Tue p1", "周一P2", "P1")]
    assert [(s[0], s[1].code) if s else None for s in parsed] == [(1, "P1"), (1, "P1"), (2, "P1"), None, None]


# ------------------------------------------------------------------------------------------ class teachers


CLASS_HEADER = ["工号", "姓名", "手机", "邮箱", "班主任班级"]


def leads(school: School) -> dict[tuple[int, str], str]:
    return {(row.grade, row.class_name): row.teacher.code for row in db.session.scalars(
        select(ClassTeacher).where(ClassTeacher.school_id == school.id))}


def test_class_teachers_and_contacts_in_the_teachers_import(school: School) -> None:
    # make_school's pupils: grades 3, 4, 5 in classes 3-1, 4-1, 5-1
    rows = [CLASS_HEADER, ["T1", "李老师", "+86 139-0000-0001", "li@school.example", "3-1"],
            ["T2", "王老师", "", "", "4-1"], ["T3", "赵老师", "13900000003", "", ""]]
    result = run("teachers", xlsx(rows), school)
    assert result.ok, messages(result)
    assert (result.created, result.updated) == (0, 3)
    assert leads(school) == {(3, "3-1"): "T1", (4, "4-1"): "T2"}
    li = db.session.scalar(select(Teacher).where(Teacher.school_id == school.id, Teacher.code == "T1"))
    assert li is not None and (li.phone, li.email) == ("13900000001", "li@school.example")
    assert (run("teachers", xlsx(rows), school).unchanged) == 3  # the same file again changes nothing
    moved = run("teachers", xlsx([CLASS_HEADER, ["T3", "赵老师", "13900000003", "", "3-1"],
                                  ["T1", "李老师", "13900000001", "li@school.example", ""]]), school)
    assert moved.ok and moved.updated == 2
    assert leads(school) == {(3, "3-1"): "T3", (4, "4-1"): "T2"}  # 3-1 passed to T3; T2 not in the file keeps 4-1


def test_class_teacher_problems_by_row_and_column_and_nothing_written(school: School) -> None:
    db.session.add(Pupil(school=school, number="P900", name="学生900", grade=4, class_name="3-1"))
    db.session.commit()
    rows = [CLASS_HEADER + ["班主任年级"],
            ["T1", "李老师", "1390000", "", "3-1", ""],
            ["T2", "王老师", "", "not-an-address", "9-9", ""],
            ["T3", "赵老师", "", "", "3-1", 3],
            ["T9", "孙老师", "", "", "3-1", 3],
            ["T8", "周老师", "", "", "5-1", 4]]
    result = run("teachers", xlsx(rows), school)
    assert messages(result) == [
        "第 2 行，「手机」列：“1390000”不是 11 位大陆手机号。",
        "第 2 行，「班主任班级」列：3、4年级都有“3-1”班：请在“班主任年级”列填写年级。",
        "第 3 行，「邮箱」列：“not-an-address”不是 name@example.com 这样的电子邮箱地址。",
        "第 3 行，「班主任班级」列：本校没有学生在“9-9”班。请先导入学生及其班级，或检查拼写。",
        "第 5 行，「班主任班级」列：「3-1」与第 4 行重复。",
        "第 6 行，「班主任年级」列：4年级没有“5-1”班的学生（有该班的年级：5）。",
    ]
    assert leads(school) == {} and count(Teacher, school) == 3  # all or nothing


def test_class_teacher_columns_in_the_template(school: School) -> None:
    book = load_workbook(io.BytesIO(template_file("teachers", "xlsx")))
    headers = [cell.value for cell in book.worksheets[0][1]]
    assert {"手机", "邮箱", "班主任班级", "班主任年级"} <= set(headers)
