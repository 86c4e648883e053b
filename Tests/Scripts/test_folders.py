"""scripts/folders.py: the layering check that `make test` runs, tried on small modules of its own."""
import os
import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "folders.py"
DOC_STUB = "# Architecture\n\n<!-- folders:begin (scripts/folders.py write) -->\n<!-- folders:end -->\n"


def project(tmp_path: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
    for path, text in {"docs/architecture.md": DOC_STUB, **files}.items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return tmp_path


def run(root: pathlib.Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=root, capture_output=True, text=True)


def test_a_cycle_fails_and_names_the_files_and_types_that_make_it(tmp_path):
    root = project(tmp_path, {
        "Services/App/Model/Grant.swift": "struct Grant { let owner: Owner }\n",
        "Services/App/Users/Owner.swift": "struct Owner {}\nextension Owner { func grants() -> [Grant] { [] } }\n",
    })
    assert run(root, "write").returncode == 0
    result = run(root, "check")
    assert result.returncode == 1
    assert "the folders Model, Users reach each other" in result.stderr
    assert "Model -> Users: Model/Grant.swift names Owner" in result.stderr
    assert "Users -> Model: Users/Owner.swift names Grant" in result.stderr


def test_layered_folders_pass_and_the_picture_is_written_from_the_code(tmp_path):
    root = project(tmp_path, {
        "Services/App/Model/Grant.swift": "struct Grant {}\n",
        "Services/App/Storage/GrantStore.swift": "protocol GrantStore { func grant() -> Grant }\n",
        "Services/App/OAuth/TokenController.swift": "struct TokenController { let store: any GrantStore }\n",
        # The composition root may use every folder, and every folder may use what it declares.
        "Services/App/App.swift": "struct AppContext { let controller: TokenController }\n",
        "Services/App/Storage/Context.swift": "func context() -> AppContext? { nil }\n",
    })
    assert run(root, "check").returncode == 1  # the picture is not written yet
    assert "out of date" in run(root, "check").stderr
    assert run(root, "write").returncode == 0
    result = run(root, "check")
    assert result.returncode == 0, result.stderr
    doc = (root / "docs/architecture.md").read_text()
    assert "    OAuth --> Storage" in doc
    assert "    Storage --> Model" in doc
    # OAuth -> Model follows from OAuth -> Storage -> Model: used, but left out of the picture.
    assert "OAuth --> Model" not in doc
    assert "| 2 | OAuth |" in doc and "| 0 | Model |" in doc


def test_names_in_comments_and_strings_are_not_uses_but_interpolated_code_is(tmp_path):
    files = {
        "Services/App/A/Alpha.swift": (
            "struct Alpha {\n"
            "    // Beta is only mentioned here\n"
            "    /* and here: Beta /* nested */ Beta */\n"
            '    let text = "Beta"\n'
            '    let raw = #"Beta \\(Beta.name)"#\n'
            '    let multi = """\n    Beta\n    """\n'
            "}\n"
        ),
        "Services/App/B/Beta.swift": "struct Beta { static let name = \"b\"; let alpha: Alpha }\n",
    }
    root = project(tmp_path, files)
    run(root, "write")
    assert run(root, "check").returncode == 0
    files["Services/App/A/Alpha.swift"] = 'struct Alpha { let text = "\\(Beta.name ?? "none")" }\n'
    root = project(tmp_path, files)
    run(root, "write")
    result = run(root, "check")
    assert result.returncode == 1
    assert "A -> B: A/Alpha.swift names Beta" in result.stderr
