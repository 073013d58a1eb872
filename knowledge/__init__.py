"""The knowledge base: validated YAML data, its schema and its loader."""

from knowledge.loader import KnowledgeBase, get_kb, load, read_yaml
from knowledge.schema import KnowledgeError

__all__ = ["KnowledgeBase", "KnowledgeError", "get_kb", "load", "read_yaml"]
