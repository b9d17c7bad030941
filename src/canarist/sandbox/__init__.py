"""The local KServe sandbox: a separate program canarist talks to like a cluster."""
