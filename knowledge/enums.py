"""The knowledge base's fixed vocabularies: str enums for families, modalities, compute, deployment,
similarities, speed classes, pitfalls, device classes and source kinds. Tasks and techniques are open
(the knowledge base may add more); these are not. Re-exported by ``knowledge.schema``."""

from __future__ import annotations

import enum


class Family(str, enum.Enum):
    CNN = "cnn"
    NLP_TRANSFORMER = "nlp_transformer"
    MULTIMODAL = "multimodal"
    VISION_TRANSFORMER = "vision_transformer"
    AUDIO = "audio"


class Modality(str, enum.Enum):
    IMAGE = "image"
    TEXT = "text"
    IMAGE_TEXT = "image_text"
    AUDIO = "audio"


class Compute(str, enum.Enum):
    CPU = "cpu"
    CONSUMER_GPU = "consumer_gpu"
    DATACENTER_GPU = "datacenter_gpu"
    TPU = "tpu"


class Deployment(str, enum.Enum):
    MOBILE = "mobile"
    EDGE = "edge"
    SERVER = "server"
    BATCH = "batch"


class TaskSimilarity(str, enum.Enum):
    SAME = "same"
    RELATED = "related"
    DIFFERENT = "different"


class DomainSimilarity(str, enum.Enum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class RetainSource(str, enum.Enum):
    """Must the adapted model keep its original (source) abilities?"""

    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"


class Speed(str, enum.Enum):
    FAST = "fast"
    MEDIUM = "medium"
    SLOW = "slow"
    VERY_SLOW = "very_slow"


SPEED_ORDER = {s.value: i for i, s in enumerate(Speed)}


class Pitfall(str, enum.Enum):
    CATASTROPHIC_FORGETTING = "catastrophic_forgetting"
    NEGATIVE_TRANSFER = "negative_transfer"
    DOMAIN_SHIFT = "domain_shift"
    OVERFITTING = "overfitting"
    UNDERFITTING = "underfitting"
    DIVERGENCE = "divergence"
    FAILED_RUN = "failed_run"
    # practical problems users bring that are not transfer-learning pitfalls proper
    OUT_OF_MEMORY = "out_of_memory"
    SLOW_TRAINING = "slow_training"
    LABEL_NOISE = "label_noise"
    CLASS_IMBALANCE = "class_imbalance"
    DATA_LEAKAGE = "data_leakage"
    STOPPED_EARLY = "stopped_early"


class DeviceClass(str, enum.Enum):
    """Where a model is deployed: each class has one representative device entry."""

    MICROCONTROLLER = "microcontroller"
    RASPBERRY_PI_CPU = "raspberry_pi_cpu"
    PHONE_CPU = "phone_cpu"
    PHONE_NPU = "phone_npu"
    LAPTOP_CPU = "laptop_cpu"
    JETSON_GPU = "jetson_gpu"
    CONSUMER_GPU = "consumer_gpu"
    DATACENTER_GPU = "datacenter_gpu"
    TPU = "tpu"


class SourceKind(str, enum.Enum):
    SLIDE = "slide"
    PAPER = "paper"
    DOCS = "docs"
    MEASURED = "measured"


# --- entries
