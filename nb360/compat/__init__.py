"""Drop-in facades over nb360 for code written against other benchmark APIs (`nb360.compat.nats`)."""
