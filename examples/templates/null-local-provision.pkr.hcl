source "null" "local" {
  communicator = "local"
  local_dir    = "output-null/machine"
}

build {
  description = "Provisions ./output-null/machine with shell and file (a directory up and down), then compresses what came back and writes a manifest."
  sources = [
    "source.null.local",
  ]

  provisioner "file" {
    destination = "www"
    source      = "${path.root}/files/site"
  }

  provisioner "shell" {
    environment_vars = ["GREETING=provisioned by ${source.name}"]
    inline           = ["mkdir -p report", "echo \"$GREETING\" > report/greeting.txt", "ls -R www > report/listing.txt", "wc -l www/site/index.html > report/lines.txt"]
  }

  provisioner "file" {
    destination = "output-null/report"
    direction   = "download"
    source      = "report/"
  }

  post-processors {
    post-processor "artifice" {
      files = ["output-null/report/greeting.txt", "output-null/report/listing.txt", "output-null/report/lines.txt"]
    }

    post-processor "compress" {
      keep_input_artifact = true
      output              = "output-null/report.tar.gz"
    }
  }

  post-processor "manifest" {
    output = "output-null/manifest.json"
  }
}
