"""Test set-up: every test session gets its own sportbench home, its own mongod on a free port and a fresh database,
all removed at the end, so tests never touch a user's datasets."""
import os, socket, uuid
import pytest

os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session", autouse=True)
def isolated_store(tmp_path_factory):
    home = tmp_path_factory.mktemp("sportbench_home")
    os.environ["SPORTBENCH_HOME"] = str(home)
    os.environ["SPORTBENCH_DB_NAME"] = f"sportbench_test_{uuid.uuid4().hex[:8]}"
    if "SPORTBENCH_DB_URI" not in os.environ: os.environ["SPORTBENCH_DB_PORT"] = str(_free_port())
    from sportbench.store import connect, stop_db
    fo = connect()
    yield home
    import fiftyone.core.odm as foo
    foo.get_db_client().drop_database(os.environ["SPORTBENCH_DB_NAME"])
    stop_db()


@pytest.fixture
def dataset_name(request):
    "A unique dataset name for one test; the dataset is deleted afterwards."
    import fiftyone as fo
    name = f"t-{request.node.name[:40]}-{uuid.uuid4().hex[:6]}"
    yield name
    if fo.dataset_exists(name): fo.delete_dataset(name)


@pytest.fixture
def dataset(dataset_name):
    "An empty persistent dataset with sportbench's frame fields, deleted after the test."
    from sportbench.store import get_dataset
    return get_dataset(dataset_name)


def shared_or_skip(*parts):
    "The path in ../shared/data, or skip the test saying what is missing."
    from sportbench.core import shared_data
    path = shared_data(*parts)
    if path is None: pytest.skip(f"needs ../shared/data/{'/'.join(parts)} (not present beside this checkout)")
    return path


@pytest.fixture
def one_torch_thread():
    "One torch thread for tiny models: on a busy 2-core machine OpenMP threads spin-wait on each other."
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
