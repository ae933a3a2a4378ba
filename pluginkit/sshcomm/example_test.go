package sshcomm_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/packer-stdio/packer/pluginkit"
	"github.com/packer-stdio/packer/pluginkit/sshcomm"
)

// A builder connects, runs a command and uploads a file. (Not run: it
// needs a machine to reach.)
func ExampleConnect() {
	key, err := sshcomm.LoadSigner("~/.ssh/id_ed25519", "")
	if err != nil {
		log.Fatal(err)
	}
	comm, err := sshcomm.Connect(context.Background(), sshcomm.Config{
		Host:               "10.0.0.5",
		User:               "deploy",
		Auth:               sshcomm.Auth{Signers: []ssh.Signer{key}},
		HostKeyFingerprint: "SHA256:8xaUc817JifX61GO0Tr/Gc4vSZS1SKEIR7dGZidQxSU",
		FileTransfer:       sshcomm.SFTP,
		Say:                func(msg string) { fmt.Println(msg) },
	})
	if err != nil {
		log.Fatal(err) // e.g. ssh: 10.0.0.5:22: user deploy: authentication failed: publickey rejected, password not configured
	}
	defer comm.Close()
	status, err := comm.Start(context.Background(), &pluginkit.RemoteCmd{Command: "uname -a", Stdout: os.Stdout, Stderr: os.Stderr})
	if err != nil || status != 0 {
		log.Fatalf("uname: status %d, %v", status, err)
	}
	err = comm.Upload(context.Background(), "/tmp/motd", strings.NewReader("provisioned\n"), 0o644, int64(len("provisioned\n")))
	if err != nil {
		log.Fatal(err)
	}
}
