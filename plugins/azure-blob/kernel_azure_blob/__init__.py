"""kernel-azure-blob: a result store on Azure Blob Storage (block blobs), in the layout of
Celery's ``azureblockblob://`` backend."""
