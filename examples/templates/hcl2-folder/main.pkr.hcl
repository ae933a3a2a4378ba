packer {
  required_version = ">= 0.1.0"
}

# A data source: null returns its input; real ones (http, or a plugin's)
# compute values before any build starts.
data "null" "channel" {
  input = "stable"
}

locals {
  out_dir = "output-hcl2-folder"
  stamp   = "${var.release}-${data.null.channel.output}"
  header  = "release ${local.stamp}"
}

source "file" "notes" {
  target  = "${local.out_dir}/notes.txt"
  content = "${local.header}\n${join("\n", [for f in var.flavours : "- ${f}"])}\n"
}

source "null" "machine" {
  communicator = "local"
  local_dir    = "${local.out_dir}/machine"
}

build {
  name        = "release"
  description = "Two sources, a provisioner for one of them, and a post-processor chain for both."

  sources = ["source.file.notes"]

  source "source.null.machine" {
    name = "box"
  }

  provisioner "shell" {
    only = ["null.box"]
    inline = [
      "echo '${local.header}' > stamp.txt",
      "echo 'signed with ${var.signing_key}'",
      "echo 'machine directory: ${build.LocalDir}'", # a value the null builder shares
    ]
  }

  post-processors {
    post-processor "checksum" {
      only           = ["file.notes"]
      checksum_types = ["sha256"]
      output         = "${local.out_dir}/{{.BuildName}}.sha256"
    }
    post-processor "manifest" {
      output     = "${local.out_dir}/manifest.json"
      strip_path = true
      custom_data = {
        stamp  = local.stamp
        source = source.name
      }
    }
  }
}
