variable "greeting" {
  type    = string
  default = "Hello from a packer plugin"
}

variable "output_dir" {
  type    = string
  default = "output-hello"
}

source "file" "hello" {
  content = "${var.greeting} (build ${source.name}, ${legacy_isotime("2006-01-02")})\n"
  target  = "${var.output_dir}/hello.txt"
}

build {
  description = "A first build: the file builder writes a file, a shell-local provisioner runs on this machine, and two post-processors record a sha256 checksum and a manifest. Every component runs as its own plugin process."
  sources = [
    "source.file.hello",
  ]

  provisioner "shell-local" {
    inline = ["echo \"provisioning $PACKER_BUILD_NAME on $(uname -s)\""]
  }

  post-processors {
    post-processor "checksum" {
      checksum_types = ["sha256"]
      output         = "${var.output_dir}/{{.BuildName}}.{{.ChecksumType}}"
    }

    post-processor "manifest" {
      output     = "${var.output_dir}/manifest.json"
      strip_path = true
    }
  }
}
