"""Reading files: byte decoding and one parser per supported format."""
