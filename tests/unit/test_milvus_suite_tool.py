"""tools/milvus_suite.py: how it rewrites the suite's requirements and reads pytest's JUnit XML."""

from __future__ import annotations

from pathlib import Path

from tools.milvus_suite import requirements, summarize, write_summary

REQS = """--find-links https://example.invalid/simple/pymilvus/
--extra-index-url https://example.invalid/simple/
pytest==8.3.4
pytest-timeout==1.3.3
# pymilvus
pymilvus==2.6.15rc6
pymilvus[bulk_writer]==2.6.15rc6
numpy==2.2.6
"""

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="5">
 <testcase classname="milvus_client.test_a.TestX" name="test_ok" time="0.1"/>
 <testcase classname="milvus_client.test_a.TestX" name="test_bad[1]" time="0.1">
  <failure message="AssertionError: Response of API create_collection expect True, but got False">trace</failure>
  <system-err>RPC error: [describe], &lt;MilvusException: (code=100, message=old error)&gt;
RPC error: [create_collection], &lt;MilvusException: (code=1100, message=vector type not support null)&gt;</system-err>
 </testcase>
 <testcase classname="testcases.test_b.TestY" name="test_plain" time="0.1">
  <failure message="assert [1, 2] == [2]">long text</failure>
  <system-out>&lt;MilvusException: (code=5, message=unrelated)&gt;</system-out>
 </testcase>
 <testcase classname="testcases.test_b.TestY" name="test_skip" time="0"><skipped message="skip"/></testcase>
 <testcase classname="testcases.test_b.TestY" name="test_err" time="0"><error message="fixture failed"/></testcase>
</testsuite></testsuites>
"""


def test_requirements_drop_extra_index_and_replace_unusable_pins(tmp_path: Path) -> None:
    src = tmp_path / "requirements.txt"
    src.write_text(REQS)
    lines, replaced = requirements(src, "2.6.17", Path("/nonexistent/python"))
    assert lines == [
        "pytest==8.3.4",
        "pytest-timeout==2.3.1",
        "pymilvus==2.6.17",
        "pymilvus[bulk_writer]==2.6.17",
        "numpy==2.2.6",
    ]
    assert replaced == {"pytest-timeout==1.3.3": "pytest-timeout==2.3.1", "2.6.15rc6": "2.6.17"}


def test_summary_counts_per_file_and_reasons(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    junit.write_text(JUNIT)
    per_file = summarize(junit)
    assert list(per_file) == ["milvus_client/test_a.py", "testcases/test_b.py"]
    a, b = per_file["milvus_client/test_a.py"], per_file["testcases/test_b.py"]
    assert (a.passed, a.failed, a.error, a.skipped) == (1, 1, 0, 0)
    assert (b.passed, b.failed, b.error, b.skipped) == (0, 1, 1, 1)
    # a generic "expect True" assertion is explained by the last server error logged
    assert a.failures[0]["message"] == "MilvusException(code=1100): vector type not support null"
    # a plain assertion on results keeps its own text
    assert b.failures[0]["message"] == "assert [1, 2] == [2]"
    assert b.failures[1] == {"test": "testcases.test_b.TestY::test_err", "kind": "error", "message": "fixture failed"}
    line = write_summary(tmp_path, per_file, {"suite": "x"})
    assert line == "1 passed, 2 failed, 1 errors, 1 skipped"
    text = (tmp_path / "summary.md").read_text()
    assert "| milvus_client/test_a.py | 1 | 1 | 0 | 0 |" in text and "| **total** | 1 | 2 | 1 | 1 |" in text
