"""The operator side of Edgeloop: the ``edgeloop`` CLI and the embedded local stack."""
