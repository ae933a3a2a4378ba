packer {
  required_plugins {
    notes = {
      version = ">= 0.1.0"
      source  = "example.com/you/notes"
    }
  }
}

source "notes-dir" "out" {
  output = "out"
}

build {
  sources = ["source.notes-dir.out"]

  provisioner "notes-write" {
    file = "hello.txt"
    text = "hello from my plugin"
  }

  post-processor "notes-manifest" {
    output = "manifest.json"
  }
}
