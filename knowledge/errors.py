"""The one error type of bad input: one ``Error:`` line naming the file, the field and what was
expected, exit status 2 in the CLI. Every layer raises it or a subclass."""


class KnowledgeError(ValueError):
    """A knowledge file, or an input checked against it, is invalid."""
