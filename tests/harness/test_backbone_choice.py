"""Choosing the image model of a run, and the errors a user sees, without torchvision installed."""

import importlib.util

import pytest
from click.testing import CliRunner

from cli import main
from harness.training.backbones import is_backbone_name
from harness.training.models import ModelError
from harness.training.image_run import image_backbone_spec
from harness.training.run import RunConfig
from knowledge import get_kb
from rules.engine import get_engine
from rules.scenario import normalize

HAS_TORCHVISION = importlib.util.find_spec("torchvision") is not None


def _plan(**extra):
    kb = get_kb()
    return get_engine(kb).consult(normalize({"task": "image_classification", "dataset_size": 700,
                                             "compute": "cpu", **extra}, kb)).to_dict()


def test_backbone_names():
    kb = get_kb()
    assert is_backbone_name("torchvision:resnet18") and is_backbone_name("timm:vit_tiny_patch16_224")
    assert is_backbone_name("resnet-18", kb) and is_backbone_name("mobilenet_v3_small", kb)
    assert not is_backbone_name("all-MiniLM-L6-v2", kb) and not is_backbone_name(None)
    assert not is_backbone_name("weights.safetensors", kb)


def test_the_small_cnn_is_the_default_and_takes_a_weights_file():
    kb = get_kb()
    plan = _plan()
    assert image_backbone_spec(plan, RunConfig(techniques=["fine_tuning"]), kb) is None
    assert image_backbone_spec(plan, RunConfig(techniques=["fine_tuning"], model="cnn.safetensors"), kb) is None


def test_a_text_model_or_an_unknown_name_is_refused_for_images():
    kb = get_kb()
    with pytest.raises(ModelError, match="not an image model"):
        image_backbone_spec(_plan(), RunConfig(techniques=["fine_tuning"], model="bert-base"), kb)
    with pytest.raises(ModelError, match="Nearest catalog names: resnet-18"):
        image_backbone_spec(_plan(), RunConfig(techniques=["fine_tuning"], model="resnet-19"), kb)


@pytest.mark.skipif(HAS_TORCHVISION, reason="torchvision is installed here: the missing-package error cannot show")
@pytest.mark.parametrize("model", ["torchvision:resnet18", "resnet-18", "timm:resnet18"])
def test_without_torchvision_a_backbone_run_says_how_to_install_it(tmp_path, model):
    sc = tmp_path / "s.yaml"
    sc.write_text("task: image_classification\ndataset_size: 700\nnum_classes: 5\ncompute: cpu\n")
    (tmp_path / "w.safetensors").write_bytes(b"")
    r = CliRunner().invoke(main, ["run", str(sc), "--model", model, "--weights", str(tmp_path / "w.safetensors"),
                                  "--seeds", "2", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2, r.output
    assert "is not installed" in r.output and "make vision" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "o" / "run.json").exists()
