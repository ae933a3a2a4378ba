# Input variables: set them with -var, -var-file, a *.auto.pkrvars.hcl file
# (like release.auto.pkrvars.hcl here) or PKR_VAR_name.
variable "release" {
  type        = string
  description = "The release the files are stamped with."
  validation {
    condition     = can(regex("^v[0-9]+\\.[0-9]+$", var.release))
    error_message = "The release must look like v1.2."
  }
}

variable "flavours" {
  type        = list(string)
  default     = ["vanilla", "chocolate"]
  description = "One file is written per flavour, by each source."
}

variable "signing_key" {
  type      = string
  default   = "not-a-real-key"
  sensitive = true
}
