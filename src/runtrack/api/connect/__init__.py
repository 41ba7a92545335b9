"""flyteidl2 services over the Connect protocol (connectrpc), mounted on the main app."""
