"""The files a Hugging Face Space and a fresh clone rely on say what the code does."""
import re
from pathlib import Path

import yaml

from semedit.registry import load_catalogue
from semedit.settings import PROJECT_ROOT, WEIGHTS_DIR, Settings


def front_matter() -> dict:
    text = (PROJECT_ROOT / "README.md").read_text()
    m = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert m, "README.md must start with Space front matter"
    return yaml.safe_load(m.group(1))


def test_readme_front_matter_matches_the_code():
    fm = front_matter()
    assert fm["sdk"] == "gradio" and fm["app_file"] == "app.py"
    assert str(fm["python_version"]) == "3.10"
    pinned = re.search(r"^gradio==(\S+)$", (PROJECT_ROOT / "requirements.txt").read_text(), re.M).group(1)
    assert fm["sdk_version"] == pinned
    hub_repos = {s.hub.repo_id for s in load_catalogue(WEIGHTS_DIR / "catalogue.json").models if s.hub}
    assert hub_repos <= set(fm["models"])
    assert fm["suggested_hardware"]


def test_spacefile_is_a_v0_manifest_with_one_python_micro():
    d = yaml.safe_load((PROJECT_ROOT / "Spacefile").read_text())
    assert d["v"] == 0 and len(d["micros"]) == 1
    micro = d["micros"][0]
    assert micro["run"] == "python app.py" and micro["primary"] is True
    env = {e["name"]: e["default"] for e in micro["presets"]["env"]}
    assert {"SEMEDIT_DEVICE", "SEMEDIT_CACHE_DIR", "HF_HUB_OFFLINE"} <= set(env)
    for needed in ("app.py", "semedit", "weights", "examples", "requirements.txt"):  # examples feed the inversion tab
        assert needed in micro["include"]
    s = Settings.from_env(env)  # the presets are values our settings accept
    assert s.hub_offline and s.device == "auto"


def test_settings_from_env():
    s = Settings.from_env({"SEMEDIT_DEVICE": "cpu", "HF_HUB_OFFLINE": "1", "PORT": "8080",
                           "SEMEDIT_MEMORY_BUDGET_MB": "512", "HF_HOME": "/x"})
    assert (s.device, s.hub_offline, s.port, s.memory_budget_mb) == ("cpu", True, 8080, 512.0)
    assert s.hub_cache_dir == Path("/x/hub")
    assert Settings.from_env({}).port == 7860 and not Settings.from_env({}).hub_offline


def test_device_tree_script_hides_the_weights_from_device_calls_and_restores_them(tmp_path):
    """tools/device_tree.sh in a small repository of the same layout: hidden, the weights are
    neither tracked nor untracked-and-unignored (so a device call does not send them) yet stay on
    disk; restored, the checkout is exactly as before."""
    import shutil
    import subprocess

    def git(*args):
        return subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True, text=True).stdout

    (tmp_path / "tools").mkdir()
    shutil.copy(PROJECT_ROOT / "tools" / "device_tree.sh", tmp_path / "tools" / "device_tree.sh")
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "big.safetensors").write_bytes(b"w" * 5000)
    (tmp_path / "code.py").write_text("print(1)\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init")
    script = ["bash", str(tmp_path / "tools" / "device_tree.sh")]
    before = int(subprocess.run(script + ["size"], check=True, capture_output=True, text=True).stdout)
    subprocess.run(script + ["hide"], check=True, capture_output=True)
    sent = git("ls-files") + git("ls-files", "--others", "--exclude-standard")
    assert "weights/" not in sent and "code.py" in sent
    assert (tmp_path / "weights" / "big.safetensors").stat().st_size == 5000
    hidden = int(subprocess.run(script + ["size"], check=True, capture_output=True, text=True).stdout)
    assert hidden <= before - 5000
    subprocess.run(script + ["restore"], check=True, capture_output=True)
    assert git("status", "--porcelain") == "" and "weights/big.safetensors" in git("ls-files")
