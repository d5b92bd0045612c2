"""The device a run trains on, as TensorFlow sees it (recorded on the run; no GPU on these machines)."""

from trainer_job.devices import VARIANT_ENV, describe, training_device


def test_on_a_machine_without_a_gpu_the_cpu_build_trains_on_the_cpu(monkeypatch):
    monkeypatch.setenv(VARIANT_ENV, "cpu")
    device = training_device()
    assert device["device"] == "CPU:0" and device["kind"] == "CPU"
    assert "CPU:0" in device["physical"] and device["gpus"] == []
    assert device["cuda_build"] is False and device["variant"] == "cpu" and device["tensorflow"].startswith("2.")
    assert describe(device) == f"training on CPU:0 (no GPU visible; TensorFlow {device['tensorflow']}, cpu image)"


def test_a_gpu_is_described_by_its_name():
    device = {"device": "GPU:0", "kind": "GPU", "physical": ["CPU:0", "GPU:0"], "cuda_build": True,
              "gpus": [{"device": "/physical_device:GPU:0", "name": "NVIDIA L4", "compute_capability": "8.9"}],
              "tensorflow": "2.21.0", "variant": "gpu"}
    assert describe(device) == "training on GPU:0 (NVIDIA L4; TensorFlow 2.21.0, gpu image)"
