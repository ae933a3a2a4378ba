variable "greeting" {
  type    = string
  default = "Hello from packer-stdio"
}

variable "api_token" {
  type      = string
  default   = "not-a-real-token"
  sensitive = true
}

source "file" "greeting" {
  content = "${var.greeting}, built by ${source.name} (${source.type}) at ${legacy_isotime("2006-01-02T15:04:05Z07:00")}\n"
  target  = "output-file/greeting.txt"
}

build {
  description = "Writes a greeting into output-file/greeting.txt, checksums it and records the build in output-file/manifest.json."
  sources = [
    "source.file.greeting",
  ]

  provisioner "shell-local" {
    inline = ["echo 'the token stays secret: ${var.api_token}'", "wc -c output-file/greeting.txt"]
  }

  post-processors {
    post-processor "checksum" {
      keep_input_artifact = true
      checksum_types      = ["sha256", "md5"]
      output              = "output-file/{{.BuildName}}.{{.ChecksumType}}"
    }

    post-processor "manifest" {
      custom_data = {
        example = "file-checksum-manifest"
      }
      output     = "output-file/manifest.json"
      strip_path = true
    }
  }
}
