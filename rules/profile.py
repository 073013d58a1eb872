"""Profile rules: classify the scenario (data size, compute, memory, latency)."""

from __future__ import annotations

from rules._experta import MATCH, TEST
from rules.base import (
    Assumed,
    ComputeLimited,
    DeployDevice,
    Language,
    LatencyBudget,
    LatencyCritical,
    MemoryBudget,
    Scenario,
    SizeClass,
    Threshold,
    rule,
)

SAL = 60


def device_spec(kb, device: str) -> dict:
    """The numbers of a device entry the latency estimate needs."""
    d = kb.devices[device]
    return {"gflops": d.gflops, "bandwidth_gbs": d.bandwidth_gbs, "bytes_per_param": d.bytes_per_param,
            "overhead_ms": d.overhead_ms, "memory_gb": d.memory_gb}


class ProfileRules:
    @rule(
        "profile.size_small",
        Scenario(dataset_size=MATCH.n),
        Threshold(dataset_small_max=MATCH.small),
        TEST(lambda n, small: n <= small),
        salience=SAL,
        basis=["thresholds:dataset_small_max"],
    )
    def size_small(self, n, small):
        """dataset_size <= dataset_small_max -> the target data is small (limited)."""
        self.conclude(SizeClass(value="small", why=f"{n} labeled examples <= {small}"))

    @rule(
        "profile.size_medium",
        Scenario(dataset_size=MATCH.n),
        Threshold(dataset_small_max=MATCH.small, dataset_medium_max=MATCH.medium),
        TEST(lambda n, small, medium: small < n <= medium),
        salience=SAL,
        basis=["thresholds:dataset_small_max", "thresholds:dataset_medium_max"],
    )
    def size_medium(self, n, small, medium):
        """dataset_small_max < dataset_size <= dataset_medium_max -> medium data."""
        self.conclude(SizeClass(value="medium", why=f"{small} < {n} labeled examples <= {medium}"))

    @rule(
        "profile.size_large",
        Scenario(dataset_size=MATCH.n),
        Threshold(dataset_medium_max=MATCH.medium, full_training_min_examples=MATCH.huge),
        TEST(lambda n, medium, huge: medium < n < huge),
        salience=SAL,
        basis=["thresholds:dataset_medium_max", "thresholds:full_training_min_examples"],
    )
    def size_large(self, n, medium, huge):
        """dataset_medium_max < dataset_size < full_training_min_examples -> large data."""
        self.conclude(SizeClass(value="large", why=f"{medium} < {n} labeled examples < {huge}"))

    @rule(
        "profile.size_huge",
        Scenario(dataset_size=MATCH.n),
        Threshold(full_training_min_examples=MATCH.huge),
        TEST(lambda n, huge: n >= huge),
        salience=SAL,
        basis=["thresholds:full_training_min_examples"],
    )
    def size_huge(self, n, huge):
        """dataset_size >= full_training_min_examples -> enough data to train from scratch."""
        self.conclude(SizeClass(value="huge", why=f"{n} labeled examples >= {huge}"))

    @rule(
        "profile.compute_limited_device",
        Scenario(compute=MATCH.compute),
        Threshold(limited_compute=MATCH.limited),
        TEST(lambda compute, limited: compute in limited),
        salience=SAL,
        basis=["thresholds:limited_compute"],
    )
    def compute_limited_device(self, compute):
        """compute is in limited_compute (e.g. cpu) -> compute is limited."""
        self.conclude(ComputeLimited(value=True, why=f"compute '{compute}' has no accelerator"))

    @rule(
        "profile.compute_limited_memory",
        Scenario(compute=MATCH.compute, gpu_memory_gb=MATCH.gb),
        Threshold(limited_compute=MATCH.limited, limited_gpu_memory_gb=MATCH.low),
        TEST(lambda compute, limited, gb, low: compute not in limited and gb is not None and gb < low),
        salience=SAL,
        basis=["thresholds:limited_gpu_memory_gb"],
    )
    def compute_limited_memory(self, gb, low):
        """An accelerator with gpu_memory_gb below limited_gpu_memory_gb -> compute is limited."""
        self.conclude(ComputeLimited(value=True, why=f"{gb} GiB of accelerator memory < {low} GiB"))

    @rule(
        "profile.compute_sufficient",
        Scenario(compute=MATCH.compute, gpu_memory_gb=MATCH.gb),
        Threshold(limited_compute=MATCH.limited, limited_gpu_memory_gb=MATCH.low),
        TEST(lambda compute, limited, gb, low: compute not in limited and (gb is None or gb >= low)),
        salience=SAL,
        basis=["thresholds:limited_compute", "thresholds:limited_gpu_memory_gb"],
    )
    def compute_sufficient(self, compute, gb):
        """An accelerator with enough memory (or unstated) -> compute is not limited."""
        mem = f" with {gb} GiB" if gb is not None else ""
        self.conclude(ComputeLimited(value=False, why=f"compute '{compute}'{mem} can fine-tune"))

    @rule(
        "profile.memory_given",
        Scenario(gpu_memory_gb=MATCH.gb),
        TEST(lambda gb: gb is not None),
        salience=SAL,
    )
    def memory_given(self, gb):
        """gpu_memory_gb is stated -> that is the training memory budget."""
        self.conclude(MemoryBudget(gb=gb, assumed=False, why=f"{gb} GiB stated in the scenario"))

    @rule(
        "profile.memory_default",
        Scenario(gpu_memory_gb=None, compute=MATCH.compute),
        Threshold(default_memory_gb=MATCH.defaults),
        salience=SAL,
        basis=["thresholds:default_memory_gb"],
    )
    def memory_default(self, compute, defaults):
        """gpu_memory_gb not stated -> assume the default memory of the compute class."""
        gb = defaults[compute]
        self.conclude(MemoryBudget(gb=gb, assumed=True,
                                   why=f"{gb:g} GiB assumed for '{compute}' (gpu_memory_gb not given)"))

    @rule(
        "profile.latency_critical_budget",
        Scenario(latency_ms=MATCH.ms),
        Threshold(latency_critical_ms=MATCH.critical),
        TEST(lambda ms, critical: ms is not None and ms <= critical),
        salience=SAL,
        basis=["thresholds:latency_critical_ms", "sources:slide-quiz"],
    )
    def latency_critical_budget(self, ms, critical):
        """latency_ms <= latency_critical_ms -> real-time use."""
        self.conclude(LatencyCritical(why=f"latency budget {ms} ms <= {critical} ms (real-time)"))

    @rule(
        "profile.latency_critical_mobile",
        Scenario(deployment="mobile", latency_ms=MATCH.ms),
        Threshold(latency_critical_ms=MATCH.critical),
        TEST(lambda ms, critical: ms is None or ms > critical),
        salience=SAL,
        basis=["sources:slide-quiz"],
    )
    def latency_critical_mobile(self):
        """deployment is mobile (and no tighter budget stated) -> size and latency matter first."""
        self.conclude(LatencyCritical(why="a phone app: model size and inference latency bound the choice"))

    # --- deployment device, latency budget, language ---------------------------
    @rule(
        "profile.device_given",
        Scenario(device_class=MATCH.device),
        TEST(lambda device: device is not None),
        salience=SAL,
    )
    def device_given(self, device):
        """device_class is stated -> that device's published throughput bounds latency."""
        self.conclude(DeployDevice(id=device, spec=device_spec(self.kb, device),
                                   why=f"{self.kb.devices[device].name}, stated in the scenario"),
                      basis=[f"devices:{device}"])

    @rule(
        "profile.device_default",
        Scenario(device_class=None, deployment=MATCH.deployment, compute=MATCH.compute),
        Threshold(default_device_by_deployment=MATCH.defaults),
        salience=SAL,
        basis=["thresholds:default_device_by_deployment"],
    )
    def device_default(self, deployment, defaults, compute):
        """No device_class -> assume the deployment's usual device; a server or batch job the kind of machine it trains on."""
        device = defaults[deployment]
        why = f"{self.kb.devices[device].name} assumed for '{deployment}' deployment"
        by_compute = self.kb.threshold("serving_device_by_compute")
        if deployment in ("server", "batch") and by_compute.get(compute) in self.kb.devices:
            device = by_compute[compute]  # whoever trains on a CPU (or one consumer GPU) serves on one
            why = (f"{self.kb.devices[device].name} assumed for '{deployment}' deployment: the kind of machine "
                   f"the scenario trains on ({compute}; name device_class if it serves elsewhere)")
        self.conclude(DeployDevice(id=device, spec=device_spec(self.kb, device), why=why),
                      basis=[f"devices:{device}"])
        self.conclude(Assumed(field="device_class", value=device, why=why))

    @rule(
        "profile.latency_given",
        Scenario(latency_ms=MATCH.ms),
        TEST(lambda ms: ms is not None),
        salience=SAL,
    )
    def latency_given(self, ms):
        """latency_ms is stated -> that is the budget per input."""
        self.conclude(LatencyBudget(ms=ms, why=f"{ms:g} ms per input, stated in the scenario"))

    @rule(
        "profile.latency_default",
        Scenario(latency_ms=None, deployment=MATCH.deployment),
        Threshold(default_latency_ms=MATCH.defaults),
        TEST(lambda deployment, defaults: defaults.get(deployment) is not None),
        salience=SAL,
        basis=["thresholds:default_latency_ms", "sources:slide-quiz"],
    )
    def latency_default(self, deployment, defaults):
        """No latency_ms on a deployment with a usual budget (a phone app) -> assume that budget."""
        ms = defaults[deployment]
        why = f"{ms:g} ms per input assumed for '{deployment}' (interactive camera use)"
        self.conclude(LatencyBudget(ms=ms, why=why))
        self.conclude(Assumed(field="latency_ms", value=ms, why=why))

    @rule(
        "profile.language_given",
        Scenario(language=MATCH.language),
        TEST(lambda language: language is not None),
        salience=SAL,
    )
    def language_given(self, language):
        """language is stated -> candidates must cover it."""
        self.conclude(Language(value=language, why=f"{language}, stated in the scenario"))

    @rule(
        "profile.language_default",
        Scenario(language=MATCH.language, modality=MATCH.modality),
        TEST(lambda language, modality: language is None and modality in ("text", "image_text")),
        salience=SAL,
    )
    def language_default(self, **_):
        """A text task without a language -> assume English (marked as assumed)."""
        why = "English assumed for the text (name language: e.g. german, multilingual, code)"
        self.conclude(Language(value="english", why=why))
        self.conclude(Assumed(field="language", value="english", why=why))
