"""torchvision/timm backbones: building, local weights, layer groups, techniques, the CLI."""

import json

import numpy as np
import pytest

pytest.importorskip("torchvision", reason="torchvision is not installed here: run `make test-vision` "
                                          "(the image-backbone environment, .venv-vision)")
pytest.importorskip("timm", reason="timm is not installed here: run `make test-vision`")

from click.testing import CliRunner  # noqa: E402

from cli import main  # noqa: E402
from harness.training.backbones import lora_targets_image, read_state_dict, resolve_backbone  # noqa: E402
from harness.training.backbones import torchvision_groups, transfer_net  # noqa: E402
from harness.training.data import DataError  # noqa: E402
from harness.training.models import ModelError  # noqa: E402
from harness.training.run import RunConfig, execute  # noqa: E402
from harness.training.vision import digits, image_features, param_blocks, run_image, split  # noqa: E402
from knowledge import get_kb  # noqa: E402
from rules.engine import get_engine  # noqa: E402
from rules.scenario import normalize  # noqa: E402

IMAGE_SCENARIO = {"task": "image_classification", "dataset_size": 700, "num_classes": 5, "compute": "cpu",
                  "deployment": "server"}


def _target(n=None):
    data = digits(source=False)
    if n:
        data = data.subset(np.arange(n))
    train, test = split(data, 0.25, seed=0)
    train, val = split(train, 0.2, seed=0)
    return train, val, test


def _plan(**extra):
    kb = get_kb()
    return get_engine(kb).consult(normalize({**IMAGE_SCENARIO, **extra}, kb)).to_dict()


# --- building and loading


@pytest.mark.parametrize("library,arch,groups,first", [
    ("torchvision", "resnet18", 5, "body.conv1.weight"),
    ("torchvision", "mobilenet_v3_small", 13, "body.features.0.0.weight"),
    ("torchvision", "efficientnet_b0", 9, "body.features.0.0.weight"),
    ("timm", "test_resnet", 5, "body.conv1.0.weight"),
    ("timm", "test_vit", 7, "body.cls_token"),
])
def test_layer_groups_cover_the_body_in_forward_order(weights_file, library, arch, groups, first):
    spec = resolve_backbone(f"{library}:{arch}", weights_file(library, arch))
    net = transfer_net(spec, 5, 1, image_size=32)
    names = net.group_names
    assert len(names) == groups and names[0][0] == first
    flat = [n for g in names for n in g]
    body = [n for n, _ in net.named_parameters() if n.startswith("body.")]
    assert sorted(flat) == sorted(body) and len(flat) == len(set(flat))  # each parameter in one group
    assert all(not n.startswith("head.") for n in flat)


def test_torchvision_groups_merge_stem_and_trailing_norm():
    names = ["class_token", "conv_proj.weight", "conv_proj.bias", "encoder.pos_embedding",
             "encoder.layers.encoder_layer_0.ln_1.weight", "encoder.layers.encoder_layer_1.ln_1.weight",
             "encoder.ln.weight", "encoder.ln.bias"]
    assert torchvision_groups(names) == [names[:4], [names[4]], [names[5], *names[6:]]]


@pytest.mark.parametrize("fmt", ["safetensors", "pth"])
def test_weights_load_into_the_body_and_the_classifier_is_replaced(weights_file, fmt):
    import torch

    path = weights_file("torchvision", "resnet18", fmt)
    saved = read_state_dict(path)
    net = transfer_net(resolve_backbone("torchvision:resnet18", path), 7, 3, image_size=32)
    own = net.state_dict()
    assert torch.equal(own["body.layer3.0.conv1.weight"], saved["layer3.0.conv1.weight"])
    assert torch.equal(own["body.bn1.running_mean"], saved["bn1.running_mean"])
    assert net.head.out_features == 7 and net.feature_dim == 512
    assert not any(k.startswith("body.fc.") for k in own)  # the ImageNet classifier is gone
    out = net(torch.rand(4, 3, 20, 20))  # any input size: resized to the model's
    assert out.shape == (4, 7)


def test_grey_images_are_replicated_and_resized(weights_file):
    import torch

    net = transfer_net(resolve_backbone("timm:test_resnet", weights_file("timm", "test_resnet")), 3, 1,
                       image_size=32).eval()
    grey = torch.rand(2, 1, 8, 8)
    x = net.preprocess(grey)
    assert x.shape == (2, 3, 32, 32)
    assert torch.allclose((x[:, 0] * net.std[0, 0] + net.mean[0, 0]), (x[:, 1] * net.std[0, 1] + net.mean[0, 1]),
                          atol=1e-6)


def test_checkpoint_wrappers_and_data_parallel_prefixes_are_accepted(weights_file, tmp_path):
    import torch

    state = read_state_dict(weights_file("timm", "test_resnet"))
    f = tmp_path / "ckpt.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, f)
    assert set(read_state_dict(f)) == set(state)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickled_objects_are_refused(tmp_path):
    """weights_only=True: a file holding arbitrary Python objects is never unpickled."""
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("should never run",))

    f = tmp_path / "evil.pt"
    with open(f, "wb") as fh:
        pickle.dump({"w": Evil()}, fh)
    with pytest.raises(DataError, match="not a loadable weights file"):
        read_state_dict(f)


def test_weights_of_another_architecture_are_refused(weights_file):
    spec = resolve_backbone("torchvision:resnet18", weights_file("timm", "test_resnet"))
    with pytest.raises(DataError, match="do not fit torchvision:resnet18.*missing"):
        transfer_net(spec, 5, 1, image_size=32)


def test_unknown_architectures_and_missing_weights_are_clear_errors(weights_file):
    kb = get_kb()
    with pytest.raises(ModelError, match="no image-classification architecture 'resnet19'.*resnet18"):
        resolve_backbone("torchvision:resnet19", weights_file("torchvision", "resnet18"))
    with pytest.raises(ModelError, match="timm has no architecture"):
        resolve_backbone("timm:not_a_model", "x.safetensors")
    with pytest.raises(ModelError, match="--weights"):
        resolve_backbone("resnet-18", None, kb)
    assert resolve_backbone("resnet18", "w.safetensors", kb).arch == "resnet18"  # catalog alias -> builder


def test_timm_folder_layout(tmp_path):
    """The folder timm saves (config.json naming the architecture, model.safetensors) loads as is."""
    import timm
    import torch
    from timm.models import save_for_hf

    torch.manual_seed(0)
    model = timm.create_model("test_efficientnet")
    save_for_hf(model, str(tmp_path / "m"), safe_serialization=True)
    spec = resolve_backbone(str(tmp_path / "m"), None)
    assert (spec.library, spec.arch, spec.input_size) == ("timm", "test_efficientnet", 160)
    assert spec.weights.endswith("model.safetensors") and spec.mean == tuple(model.pretrained_cfg["mean"])
    net = transfer_net(spec, 4, 3, image_size=32)
    assert torch.equal(net.state_dict()["body.conv_stem.weight"], model.state_dict()["conv_stem.weight"])


@pytest.mark.parametrize("library,arch", [
    ("torchvision", "mnasnet0_5"),  # checks its layers' versions when loading
    ("torchvision", "shufflenet_v2_x0_5"),  # no stage containers: top-level children are the groups
    ("torchvision", "googlenet"),  # auxiliary heads off, published input transform on
    ("torchvision", "densenet121"),
    ("torchvision", "vgg11_bn"),
    ("timm", "mobilenetv3_small_050"),  # features from the head's hidden layer, not num_features
])
def test_more_architectures_load_train_and_group_sensibly(weights_file, library, arch):
    import torch

    net = transfer_net(resolve_backbone(f"{library}:{arch}", weights_file(library, arch)), 5, 1, image_size=64)
    net.train()
    assert net(torch.rand(2, 1, 64, 64)).shape == (2, 5)
    assert 3 <= len(net.group_names) <= 20
    norm_types = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.LayerNorm, torch.nn.GroupNorm)
    owner = {f"{mn}.{pn}": m for mn, m in net.named_modules() for pn, _ in m.named_parameters(recurse=False)}
    assert not any(all(isinstance(owner[n], norm_types) for n in g) for g in net.group_names[1:])


def test_published_weight_files_variants_load(weights_file, tmp_path):
    """Older published files: densenet's legacy key names, no num_batches_tracked counters."""
    import re

    import torch
    from safetensors.torch import save_file

    state = read_state_dict(weights_file("torchvision", "densenet121"))
    legacy = {re.sub(r"(denselayer\d+\.(?:norm|relu|conv))(\d)\.", r"\1.\2.", k): v for k, v in state.items()
              if not k.endswith("num_batches_tracked")}
    assert "features.denseblock1.denselayer1.norm.1.weight" in legacy
    save_file(legacy, str(tmp_path / "dn.safetensors"))
    net = transfer_net(resolve_backbone("torchvision:densenet121", str(tmp_path / "dn.safetensors")), 5, 3,
                       image_size=32)
    assert torch.equal(net.state_dict()["body.features.denseblock1.denselayer1.norm1.weight"],
                       state["features.denseblock1.denselayer1.norm1.weight"])


def test_torchvision_vit_lora_skips_multihead_attention_internals():
    from harness.training.backbones import BackboneSpec

    net = transfer_net(BackboneSpec("torchvision", "vit_b_16"), 5, 3, pretrained=False)
    targets = lora_targets_image(net)
    assert targets and not any(t.endswith("out_proj") for t in targets)  # nn.MultiheadAttention uses raw weights
    assert any(".mlp." in t for t in targets)


def test_lora_targets_follow_the_architecture(weights_file):
    cnn = transfer_net(resolve_backbone("torchvision:mobilenet_v3_small",
                                        weights_file("torchvision", "mobilenet_v3_small")), 5, 1, image_size=32)
    targets = lora_targets_image(cnn)
    convs = {n for n, m in cnn.named_modules() if type(m).__name__ == "Conv2d"}
    assert targets and set(targets) <= convs and "head" not in targets
    assert all(cnn.get_submodule(t).groups == 1 for t in targets)  # no depthwise convolutions
    vit = transfer_net(resolve_backbone("timm:test_vit", weights_file("timm", "test_vit")), 5, 1, image_size=32)
    assert any(t.endswith("attn.qkv") for t in lora_targets_image(vit))


# --- techniques


def _body_params(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if n.startswith("body.")}


def test_fine_tuning_freezes_the_first_k_groups_and_their_batch_norm_statistics(weights_file, recipe):
    import torch

    spec = resolve_backbone("timm:test_resnet", weights_file("timm", "test_resnet"))
    src = transfer_net(spec, 5, 1, image_size=32)
    target = _target(300)
    res = run_image("fine_tuning", src, target, 0,
                    recipe("fine_tuning", "cnn", learning_rate=1e-3, epochs=2, batch_size=32, frozen_layers=2),
                    probe_data=target[2])
    assert res.extra["frozen_layers"] == 2 and res.extra["layers"] == 5
    assert 0 < res.extra["cka_to_pretrained"] < 1
    assert res.trainable_params < sum(p.numel() for p in src.parameters())
    # run again and look at the trained model itself
    import copy

    from harness.training import vision

    model = copy.deepcopy(src)
    model.head = torch.nn.Linear(model.feature_dim, 5)
    blocks = param_blocks(model)
    for b in blocks[:2]:
        for p in b:
            p.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    vision._fit(model, target[0], None, 0, vision.train_recipe(learning_rate=1e-3, epochs=1, batch_size=32))
    after = model.state_dict()
    frozen = {n for g in model.group_names[:2] for n in g}
    assert all(torch.equal(before[n], after[n]) for n in frozen)
    assert torch.equal(before["body.conv1.1.running_mean"], after["body.conv1.1.running_mean"])  # still
    assert not torch.equal(before["body.layer4.0.conv1.weight"], after["body.layer4.0.conv1.weight"])


def test_gradual_unfreezing_and_discriminative_learning_rates(weights_file):
    import copy

    import torch

    from harness.training import vision

    spec = resolve_backbone("timm:test_resnet", weights_file("timm", "test_resnet"))
    model = transfer_net(spec, 5, 1, image_size=32)
    groups = vision._image_param_groups(model, param_blocks(model), 1e-3, 2.0, 0.0)
    assert sorted({g["lr"] for g in groups}, reverse=True) == [1e-3 / 2 ** d for d in range(6)]
    trained = copy.deepcopy(model)
    before = {k: v.clone() for k, v in trained.state_dict().items()}
    vision._fit(trained, _target(200)[0], None, 0, vision.train_recipe(learning_rate=1e-3, epochs=2, batch_size=32),
                gradual=True)
    after = trained.state_dict()
    # epoch 1 trains the head, epoch 2 the head and the top group: the lower groups never move
    lower = {n for g in trained.group_names[:4] for n in g}
    top = set(trained.group_names[4])
    assert all(torch.equal(before[n], after[n]) for n in lower)
    assert any(not torch.equal(before[n], after[n]) for n in top)


def test_feature_extraction_reuses_features_and_leaves_the_backbone(weights_file, recipe):
    spec = resolve_backbone("timm:test_resnet", weights_file("timm", "test_resnet"))
    src = transfer_net(spec, 5, 1, image_size=32)
    target = _target(300)
    feats = tuple(image_features(src, d) for d in target)
    a = run_image("feature_extraction", src, target, 0, recipe("feature_extraction", "cnn", epochs=5), features=feats,
                  probe_data=target[2])
    b = run_image("feature_extraction", src, target, 0, recipe("feature_extraction", "cnn", epochs=5), features=feats,
                  probe_data=target[2])
    assert a.accuracy == b.accuracy and a.predictions == b.predictions  # same seed, same result
    assert a.extra["cka_to_pretrained"] == 1.0 and a.trainable_params == src.feature_dim * 5 + 5


def test_lora_trains_adapters_and_the_head_only(weights_file, recipe):
    spec = resolve_backbone("timm:test_efficientnet", weights_file("timm", "test_efficientnet"))
    src = transfer_net(spec, 5, 1, image_size=32)
    target = _target(300)
    res = run_image("lora", src, target, 0, recipe("lora", "cnn", learning_rate=5e-4, epochs=1, batch_size=32,
                                                   lora={"rank": 4, "alpha": 8}), probe_data=target[2])
    total = sum(p.numel() for p in src.parameters())
    head = src.feature_dim * 5 + 5
    assert head < res.trainable_params < 0.2 * total  # adapters and the head train, the backbone does not
    assert 0 < res.extra["cka_to_pretrained"] < 1.0  # the merged adapters changed the features


def test_from_scratch_builds_the_same_architecture_untrained(weights_file):
    spec = resolve_backbone("timm:test_resnet", weights_file("timm", "test_resnet"))
    src = transfer_net(spec, 5, 1, image_size=32)
    fresh = transfer_net(spec, 5, 1, image_size=32, pretrained=False)
    assert type(fresh.body) is type(src.body)
    import torch

    assert not torch.equal(fresh.state_dict()["body.conv1.0.weight"], src.state_dict()["body.conv1.0.weight"])


# --- whole runs and the CLI


def test_run_with_a_backbone_measures_forgetting_drift_and_the_baselines(weights_file, tmp_path):
    kb = get_kb()
    cfg = RunConfig(techniques=["feature_extraction", "fine_tuning", "lora"], seeds=2, out=str(tmp_path / "r"),
                    model="timm:test_resnet", weights=weights_file("timm", "test_resnet"), image_size=32,
                    overrides={"epochs": 2})
    rec = execute(_plan(), cfg, kb)
    assert rec["config"]["backbone"] == {"library": "timm", "architecture": "test_resnet",
                                         "weights": cfg.weights, "input_size": 32}
    assert set(rec["summary"]) >= {"feature_extraction", "fine_tuning", "lora"}
    assert rec["summary"].keys() & {"pixel_baseline", "from_scratch_baseline"}
    m = rec["measurements"]
    assert 0 < m["retention_before"] <= 1  # the built-in case: linear probe on digits 0-4
    assert {"forgetting.retention.fine_tuning", "forgetting.retention.lora", "domain_shift.two_sample",
            "negative_transfer.fine_tuning"} <= set(rec["tests"])
    assert len(m["cka_to_pretrained"]) == 4 and all(0 < c <= 1 for c in m["cka_to_pretrained"])
    data = json.loads((tmp_path / "r" / "run.json").read_text())
    assert data["results"]["fine_tuning"][0]["extra"]["layers"] == 5


def test_same_plan_and_seed_give_the_same_metrics_on_cpu(weights_file, tmp_path):
    kb = get_kb()
    recs = [execute(_plan(), RunConfig(techniques=["fine_tuning"], seeds=1, out=str(tmp_path / d),
                                       model="timm:test_resnet", weights=weights_file("timm", "test_resnet"),
                                       image_size=32, baseline=False, overrides={"epochs": 1}, device="cpu"), kb)
            for d in ("a", "b")]
    a, b = (r["results"]["fine_tuning"][0] for r in recs)
    assert a["accuracy"] == b["accuracy"] and a["predictions"] == b["predictions"]


def image_folder(root, shades=(("dark", 40), ("light", 200)), n=24):
    """A folder of one sub-folder per class, ``n`` noisy 20x20 images of one shade each."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, shade in shades:
        (root / c).mkdir(parents=True)
        for i in range(n):
            a = np.clip(rng.normal(shade, 30, (20, 20, 3)), 0, 255).astype("uint8")
            Image.fromarray(a).save(root / c / f"{i}.png")
    return root


def test_cli_run_with_torchvision_weights_and_an_image_folder(weights_file, tmp_path):
    image_folder(tmp_path / "imgs")
    sc = tmp_path / "s.yaml"
    sc.write_text("task: image_classification\ndataset_size: 48\nnum_classes: 2\ncompute: cpu\n")
    r = CliRunner().invoke(main, ["run", str(sc), "--train", str(tmp_path / "imgs"), "--model", "resnet-18",
                                  "--weights", weights_file("torchvision", "resnet18"), "--image-size", "32",
                                  "--technique", "fine_tuning", "--seeds", "2", "--epochs", "1",
                                  "--out", str(tmp_path / "o"), "--format", "json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["summary"]["fine_tuning"]["seeds"] == 2
    rec = json.loads((tmp_path / "o" / "run.json").read_text())
    assert rec["config"]["backbone"]["architecture"] == "resnet18"
    assert rec["config"]["classes"] == ["dark", "light"]


def test_cli_weights_alone_take_the_plans_model(weights_file, tmp_path):
    sc = tmp_path / "s.yaml"
    sc.write_text("task: image_classification\ndataset_size: 60\nnum_classes: 5\ncompute: cpu\n"
                  "deployment: mobile\nlatency_ms: 30\n")
    plan = json.loads(CliRunner().invoke(main, ["consult", "--scenario", str(sc), "--format", "json",
                                                "--no-input"]).stdout)
    top = plan["candidates"][0]["model"]
    builder = get_kb().models[top].builder
    assert builder, top
    library, arch = builder.split(":")
    # a small image folder and one epoch of fine-tuning: the test is about which model loads (on the
    # built-in digits the probe over random weights' features took 2.5 minutes)
    imgs = image_folder(tmp_path / "imgs", (("a", 30), ("b", 80), ("c", 130), ("d", 180), ("e", 230)), n=12)
    r = CliRunner().invoke(main, ["run", str(sc), "--train", str(imgs), "--weights", weights_file(library, arch),
                                  "--image-size", "32", "--technique", "fine_tuning", "--seeds", "2", "--epochs", "1",
                                  "--out", str(tmp_path / "o"), "--format", "json"])
    assert r.exit_code == 0, r.output
    rec = json.loads((tmp_path / "o" / "run.json").read_text())
    assert rec["config"]["model_name"] == top


@pytest.mark.parametrize("args,message", [
    (["--model", "resnet-18"], "pass a local file with --weights"),
    (["--model", "timm:resnet*", "--weights", "{w}"], "timm has no architecture 'resnet*'"),
    (["--model", "torchvision:fasterrcnn_resnet50_fpn", "--weights", "{w}"], "no image-classification architecture"),
    (["--model", "timm:test_vit", "--weights", "{v}", "--image-size", "20"], "does not run at --image-size 20"),
    (["--model", "torchvision:resnet19", "--weights", "{w}"], "Nearest: resnet18"),
    (["--model", "all-MiniLM-L6-v2"], "not an image model"),
    (["--model", "timm:test_resnet", "--weights", "{w}"], "do not fit timm:test_resnet"),
    (["--model", "torchvision:resnet18", "--weights", "missing.safetensors"], "no such weights file"),
])
def test_cli_bad_backbone_input_exits_2(weights_file, tmp_path, args, message):
    sc = tmp_path / "s.yaml"
    sc.write_text("task: image_classification\ndataset_size: 200\nnum_classes: 5\ncompute: cpu\n")
    args = [a.replace("{w}", weights_file("torchvision", "resnet18")).replace("{v}", weights_file("timm", "test_vit"))
            for a in args]
    r = CliRunner().invoke(main, ["run", str(sc), *args, "--seeds", "2", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output
    assert not (tmp_path / "o" / "run.json").exists()
