"""``onnxplain ui``: the page's JSON over real HTTP, and the page itself driven in Debian's chromium.

The page's numbers are checked against the Python client's for the same request and seed (the reference: the
page must show what the server computed, not a re-derivation), progress against the run's completion, pictures
against blankness, and refusals against the code and field the user must see.
"""

from __future__ import annotations

import io
import json
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from browser import chromium, horizontal_overflow, screenshot_pixels

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "models" / "shapes" / "samples" / "sample_00.png"
MAX_UPLOAD = 64 * 1024  # small, so that an oversize upload is cheap to make
OCCLUSION = {"window": [8, 8], "stride": [8, 8]}
RISE = {"num_masks": 64, "grid_size": 7}
SLOW_RISE = {"num_masks": 100000, "target_reliability": 0}  # every mask (about a minute): only a cancel ends it soon


@pytest.fixture(scope="module")
def page(client):
    """The page on uvicorn on a free port over the session's embedded server (bundled models); its base URL."""
    import uvicorn

    from service.ui import Limits, create_app

    app = create_app(client, Limits(max_upload_bytes=MAX_UPLOAD, max_active_runs=3, run_ttl_s=600))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", app
    server.should_exit = True
    thread.join(timeout=10)
    listener.close()


def call(url: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers=headers or {},
                                     method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def post_run(base: str, methods: list[dict], image: bytes, seed: str = "", model: str = "shapes",
             filename: str = "image.png") -> tuple[int, dict]:
    boundary = uuid.uuid4().hex
    parts = [(f'form-data; name="{name}"', value.encode()) for name, value in
             (("model", model), ("seed", seed), ("methods", json.dumps(methods)))]
    parts.append((f'form-data; name="image"; filename="{filename}"', image))
    body = b"".join(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"
                    for disposition, value in parts) + f"--{boundary}--\r\n".encode()
    return call(f"{base}/api/runs", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})


def wait_finished(base: str, run_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, state = call(f"{base}/api/runs/{run_id}")
        assert status == 200
        if state["finished"]:
            return state
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} still going after {timeout} s")


def as_sent(params: dict) -> dict:
    """Parameters as the page's form sends them: text, JSON where it parses."""
    return {name: json.dumps(value) for name, value in params.items()}


def reference(client, method: str, params: dict, seed: int):
    from service.ui.runs import METRICS

    return client.explain("shapes", SAMPLE, method, params, seed=seed, metrics=METRICS).attributions[0]


# --- the JSON endpoints ------------------------------------------------------------------------------------------
def test_models_and_methods_are_the_servers(page, client):
    base, _ = page
    status, models = call(f"{base}/api/models")
    assert status == 200
    assert [m["name"] for m in models["models"]] == [m.name for m in client.list_models()]
    status, methods = call(f"{base}/api/methods")
    assert status == 200
    listed = {m.name: m for m in client.list_methods()}
    assert [m["name"] for m in methods["methods"]] == list(listed)
    occlusion = next(m for m in methods["methods"] if m["name"] == "occlusion")
    assert [(p["name"], p["default"]) for p in occlusion["parameters"]] == [
        (p.name, p.default_value) for p in listed["occlusion"].parameters]
    assert methods["metrics"] == ["deletion", "insertion", "mu_fidelity"]


def test_a_run_reports_the_clients_scores_and_reaches_100_percent(page, client):
    base, _ = page
    status, started = post_run(base, [{"name": "occlusion", "params": as_sent(OCCLUSION)},
                                      {"name": "rise", "params": as_sent(RISE)}], SAMPLE.read_bytes(), seed="11")
    assert status == 202 and started["seed"] == 11
    state = wait_finished(base, started["id"])
    assert state["percent"] == 100.0 and not state["cancelled"]
    for shown, (name, params) in zip(state["methods"], [("occlusion", OCCLUSION), ("rise", RISE)]):
        assert shown["status"] == "done" and shown["done"] == shown["total"] > 0
        expected = reference(client, name, params, 11)
        result = shown["result"]
        shown_scores = {name: metric["score"] for name, metric in result["metrics"].items()}
        assert shown_scores == {name: metric.score for name, metric in expected.metrics.items()}
        assert result["class_index"] == expected.class_index and result["score"] == expected.score
    rise = state["methods"][1]["result"]
    assert rise["samples"] == 64 and 0 < rise["reliability"] <= 1 and rise["forward_passes"] >= 64


def test_a_run_without_a_seed_shares_one_it_reports(page, client):
    base, _ = page
    status, started = post_run(base, [{"name": "rise", "params": as_sent(RISE)}], SAMPLE.read_bytes())
    assert status == 202
    state = wait_finished(base, started["id"])
    seed = state["seed"]
    assert state["methods"][0]["result"]["seed"] == seed
    expected = reference(client, "rise", RISE, seed)
    assert state["methods"][0]["result"]["metrics"]["deletion"]["score"] == expected.metrics["deletion"].score


@pytest.mark.parametrize("image, fragment", [
    (b"this is text, not a picture", "not a PNG or JPEG"),
    (SAMPLE.read_bytes()[:400], "not a PNG or JPEG"),  # a truncated PNG: its header reads, its pixels do not
    (b"", "empty"),
])
def test_an_image_that_does_not_decode_is_invalid_argument_naming_the_field(page, image, fragment):
    status, body = post_run(page[0], [{"name": "occlusion"}], image, filename="notes.txt")
    assert status == 400
    assert body["error"]["code"] == "INVALID_ARGUMENT" and body["error"]["field"] == "image"
    assert fragment in body["error"]["message"]


def test_a_gif_is_refused_as_neither_png_nor_jpeg(page):
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="GIF")
    status, body = post_run(page[0], [{"name": "occlusion"}], buffer.getvalue())
    assert (status, body["error"]["field"]) == (400, "image") and "GIF" in body["error"]["message"]


def test_an_oversize_upload_is_refused(page):
    noise = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)  # ~196 KB as PNG
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")
    assert len(buffer.getvalue()) > MAX_UPLOAD
    status, body = post_run(page[0], [{"name": "occlusion"}], buffer.getvalue())
    assert status == 413 and body["error"]["field"] == "image"
    assert f"at most {MAX_UPLOAD} bytes" in body["error"]["message"]


@pytest.mark.parametrize("methods, seed, field", [
    ([{"name": "rise", "params": {"no_such_parameter": "1"}}], "", "methods.rise"),
    ([{"name": "no_such_method"}], "", "methods.no_such_method"),
    ([], "", "methods"),
    ([{"name": "occlusion"}], "-3", "seed"),
])
def test_a_wrong_form_is_refused_before_a_run_starts(page, methods, seed, field):
    status, body = post_run(page[0], methods, SAMPLE.read_bytes(), seed=seed)
    assert status == 400 and body["error"] == {**body["error"], "code": "INVALID_ARGUMENT", "field": field}


def test_the_servers_refusal_is_shown_as_its_status(page):
    base, _ = page
    status, started = post_run(base, [{"name": "occlusion", "params": {"stride": "0"}}], SAMPLE.read_bytes())
    assert status == 202  # the client cannot know a range: the server refuses it
    error = wait_finished(base, started["id"])["methods"][0]["error"]
    assert (error["code"], error["field"]) == ("INVALID_ARGUMENT", "occlusion.stride")
    assert error["message"].startswith("stride height must be at least 1"), error["message"]  # the field said once


def test_a_model_the_server_lacks_is_refused_before_a_run_starts(page):
    status, body = post_run(page[0], [{"name": "occlusion"}], SAMPLE.read_bytes(), model="no_such_model")
    assert status == 404 and body["error"]["code"] == "NOT_FOUND" and body["error"]["field"] == "model"
    assert body["error"]["message"].startswith("no model 'no_such_model' on the server; it serves ")
    assert "shapes" in body["error"]["message"]


def test_cancel_stops_the_run_and_the_servers_job(page, client):
    base, _ = page
    before = sum(m.forward_passes for m in client.get_model_statistics("shapes"))
    status, started = post_run(base, [{"name": "rise", "params": as_sent(SLOW_RISE)},
                                      {"name": "occlusion"}], SAMPLE.read_bytes(), seed="1")
    assert status == 202
    deadline = time.monotonic() + 20
    while call(f"{base}/api/runs/{started['id']}")[1]["methods"][0]["done"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    status, _ = call(f"{base}/api/runs/{started['id']}/cancel", b"")
    assert status == 200
    state = wait_finished(base, started["id"], timeout=10)
    assert state["cancelled"] and [m["status"] for m in state["methods"]] == ["cancelled", "cancelled"]
    rise = state["methods"][0]
    assert 0 < rise["done"] < rise["total"]  # the cancelled RISE keeps what it reached; the occlusion never began
    assert state["percent"] == round(100 * rise["done"] / rise["total"] / 2, 1)
    time.sleep(1.0)  # the server stops the job at its next batch; nothing runs after that
    spent = sum(m.forward_passes for m in client.get_model_statistics("shapes")) - before
    time.sleep(0.5)
    assert sum(m.forward_passes for m in client.get_model_statistics("shapes")) - before == spent
    assert spent < SLOW_RISE["num_masks"] // 4


def test_unknown_run_is_not_found_and_finished_runs_expire(page):
    base, app = page
    assert call(f"{base}/api/runs/nothing")[0] == 404
    status, started = post_run(base, [{"name": "occlusion"}], SAMPLE.read_bytes())
    wait_finished(base, started["id"])
    app.state.runs.expire(now=time.monotonic() + 601)
    status, body = call(f"{base}/api/runs/{started['id']}")
    assert status == 404 and body["error"]["code"] == "NOT_FOUND"


def test_admission_bounds():
    from service.ui.guard import Limits, Refusal, check_admission

    check_admission(Limits(max_active_runs=2), 1, 1)
    with pytest.raises(Refusal) as refused:
        check_admission(Limits(max_active_runs=2), 2, 1)
    assert (refused.value.status, refused.value.code) == (429, "RESOURCE_EXHAUSTED")
    with pytest.raises(Refusal) as refused:
        check_admission(Limits(max_methods=2), 0, 3)
    assert (refused.value.status, refused.value.field) == (400, "methods")


# --- the page in a browser -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("profile")) as session:
        yield session


def open_page(browser, base: str, image: Path, methods: dict[str, dict], seed: str = ""):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(base + "/")
    WebDriverWait(browser, 20).until(lambda b: b.find_elements(By.CSS_SELECTOR, "fieldset.method[data-method=rise]"))
    browser.find_element(By.CSS_SELECTOR, "#model option[value=shapes]").click()
    browser.find_element(By.ID, "image").send_keys(str(image))
    for fieldset in browser.find_elements(By.CSS_SELECTOR, "fieldset.method"):
        toggle = fieldset.find_element(By.CSS_SELECTOR, "input[name=method]")
        if toggle.is_selected() != (fieldset.get_attribute("data-method") in methods):
            toggle.click()
    for name, params in methods.items():
        for param, value in params.items():
            field = browser.find_element(By.ID, f"param-{name}-{param}")
            field.clear()
            field.send_keys(json.dumps(value))
    seed_field = browser.find_element(By.ID, "seed")
    seed_field.clear()
    seed_field.send_keys(seed)
    browser.find_element(By.ID, "run").click()


def test_the_page_runs_two_methods_and_shows_the_clients_scores(page, client, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    open_page(browser, page[0], SAMPLE, {"occlusion": OCCLUSION, "rise": RISE}, seed="5")
    WebDriverWait(browser, 30).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, ".result[data-status=done]")) == 2)
    assert float(browser.find_element(By.ID, "progress").get_attribute("data-percent")) == 100.0
    assert browser.find_element(By.ID, "error").get_attribute("hidden") is not None
    for name, params in (("occlusion", OCCLUSION), ("rise", RISE)):
        card = browser.find_element(By.CSS_SELECTOR, f".result[data-method={name}]")
        expected = reference(client, name, params, 5)
        for metric in ("deletion", "insertion", "mu_fidelity"):
            cell = card.find_element(By.CSS_SELECTOR, f"td[data-key=metric-{metric}]")
            assert float(cell.get_attribute("data-value")) == expected.metrics[metric].score
            assert float(cell.text.split(" ")[0]) == pytest.approx(expected.metrics[metric].score, abs=5e-5)
        overlay = card.find_element(By.CSS_SELECTOR, "img.overlay")
        assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", overlay) == 256
        pixels = np.asarray(Image.open(io.BytesIO(overlay.screenshot_as_png)).convert("L"), dtype=np.float32)
        assert pixels.std() > 10  # a map over the image, not a flat tile
    rise_card = browser.find_element(By.CSS_SELECTOR, ".result[data-method=rise]")
    reliability = rise_card.find_element(By.CSS_SELECTOR, "td[data-key=reliability]").get_attribute("data-value")
    assert float(reliability) == reference(client, "rise", RISE, 5).precision.reliability
    assert horizontal_overflow(browser) == 0
    browser.execute_script("document.getElementById('results').scrollIntoView()")
    assert screenshot_pixels(browser, tmp_path / "page.png").std() > 10


def test_the_page_cancels_a_run(page, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    open_page(browser, page[0], SAMPLE, {"rise": SLOW_RISE}, seed="2")
    WebDriverWait(browser, 20).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".result[data-status=running]"))
    browser.find_element(By.ID, "cancel").click()
    WebDriverWait(browser, 15).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".result[data-status=cancelled]"))
    assert "cancelled" in browser.find_element(By.ID, "progress-text").text
    assert browser.find_element(By.ID, "run").is_enabled()


def test_dropping_a_file_on_the_page_chooses_it(page, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(page[0] + "/")
    WebDriverWait(browser, 20).until(lambda b: b.find_elements(By.CSS_SELECTOR, "fieldset.method"))
    browser.execute_script("""
        const transfer = new DataTransfer();
        transfer.items.add(new File([new Uint8Array(arguments[0])], "dropped.png", {type: "image/png"}));
        document.getElementById("drop").dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true}));
    """, list(SAMPLE.read_bytes()))
    assert browser.execute_script("return document.getElementById('image').files[0].name") == "dropped.png"
    assert browser.find_element(By.ID, "drop-text").text == f"dropped.png ({SAMPLE.stat().st_size} bytes)"
    preview = browser.find_element(By.ID, "preview")
    WebDriverWait(browser, 5).until(lambda b: b.execute_script("return arguments[0].naturalWidth", preview) == 64)


@pytest.mark.parametrize("content, expected", [
    (b"plain text, no picture", "INVALID_ARGUMENT: image: not a PNG or JPEG image (nor any format Pillow reads)"),
    (b"\x89PNG" + bytes(MAX_UPLOAD + 10), f"INVALID_ARGUMENT: image: {MAX_UPLOAD + 14} bytes; at most"),
    (b"\x89PNG" + bytes(MAX_UPLOAD * 3), "INVALID_ARGUMENT: image: the form is"),
])
def test_the_page_shows_a_refused_upload(page, browser, tmp_path, content, expected):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    upload = tmp_path / "upload.png"
    upload.write_bytes(content)
    open_page(browser, page[0], upload, {"occlusion": {}})
    WebDriverWait(browser, 15).until(lambda b: b.find_element(By.ID, "error").text)
    text = browser.find_element(By.ID, "error").text
    assert text.startswith(expected) and "Traceback" not in text and "BytesIO" not in text
    assert not browser.find_elements(By.CSS_SELECTOR, ".result")  # nothing ran


# --- the command ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("remote", [False, True], ids=["in-process", "--server"])
def test_the_command_serves_the_page_on_a_free_port_and_prints_its_url(remote, server, client, tmp_path):
    import shutil
    import subprocess
    import sys

    if remote:
        arguments, expected = ["--server", server.address], [m.name for m in client.list_models()]
    else:
        models = tmp_path / "models"  # one model: the command's in-process server starts in a moment
        (models / "shapes").mkdir(parents=True)
        for name in ("model.onnx", "config.json"):  # a copy: the repository does not follow links out of its folder
            shutil.copy(ROOT / "models" / "shapes" / name, models / "shapes" / name)
        arguments, expected = ["--models-dir", str(models)], ["shapes"]
    command = subprocess.Popen([sys.executable, "-m", "service.cli", "ui", "--port", "0", *arguments], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = command.stdout.readline()
        assert line.startswith("onnxplain ui: http://127.0.0.1:"), (line, command.poll() and command.stderr.read())
        base = line.split()[2].rstrip("/")
        status, listed = call(f"{base}/api/models")
        assert status == 200 and [m["name"] for m in listed["models"]] == expected
        with urllib.request.urlopen(base + "/", timeout=10) as response:
            assert b'<script src="/static/app.js">' in response.read()
    finally:
        command.terminate()
        command.wait(timeout=15)


@pytest.mark.parametrize("arguments, expected", [
    (["--port", "70000"], "error: --port: 70000: a port from 0 to 65535"),
    (["--models-dir", "no/such/folder"], "error: --models-dir: no/such/folder is not a folder"),
    (["--server", "localhost:1", "--models-dir", "models"],
     "error: --models-dir: a running server keeps its own models; give --server or --models-dir, not both"),
])
def test_a_command_line_the_page_cannot_use_fails_with_one_line(arguments, expected, capsys):
    from service.cli import main

    assert main(["ui", *arguments]) == 2
    assert capsys.readouterr().err.strip() == expected


def test_finished_runs_are_kept_up_to_the_bound_newest_first():
    from service.ui.guard import Limits
    from service.ui.runs import Run, RunStore

    store = RunStore(client=None, limits=Limits(max_kept_runs=2, run_ttl_s=100.0))
    for index, started in enumerate((0.0, 50.0, 60.0, 70.0, 80.0)):  # run 0 has expired at 120, the rest not
        store._runs[f"r{index}"] = Run(f"r{index}", "shapes", 0, [], b"", started=started, finished=True)
    store._runs["going"] = Run("going", "shapes", 0, [], b"", started=0.0)  # unfinished: never dropped
    store.expire(now=120.0)
    assert sorted(store._runs) == ["going", "r3", "r4"]
