"""S3 storage: addresses and clients, fast verified transfers, packed datasets, the embedded
SeaweedFS server and the permission preflight."""
