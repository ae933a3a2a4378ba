release = "v1.0"
