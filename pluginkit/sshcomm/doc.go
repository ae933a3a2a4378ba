// Package sshcomm is a [pluginkit.Communicator] that reaches a machine over
// SSH, for builder plugins written in Go: the communicator Packer's builders
// hand their provisioners.
//
// A builder reads the template keys with [Options] (Packer's ssh_* names and
// defaults, embedded in its configuration struct), turns them into a
// [Config] in Prepare, and in Run calls [Connect], which waits for the
// machine to answer — printing "Waiting for SSH to become available..." and
// retrying within Config.Timeout — and returns a [Comm]. The builder hands
// the Comm to [pluginkit.Hook.Run] and closes it when the hook returns:
//
//	comm, err := sshcomm.Connect(ctx, cfg)
//	if err != nil {
//		return nil, err
//	}
//	defer comm.Close()
//	err = hook.Run(ctx, protocol.HookProvision, comm, data)
//
// Commands run in a session of their own, with stdin, stdout and stderr
// streamed; cancelling a command's context sends the remote command SIGTERM,
// then closes its session. Files travel with SCP (the scp protocol spoken
// over an SSH session to the remote "scp -t"/"scp -f"; nothing runs locally)
// or SFTP (github.com/pkg/sftp), as Config.FileTransfer says. Transfers
// stream: memory use does not grow with file size (an upload of unknown
// size over SCP is spooled to a temporary file first, as the protocol needs
// the size up front).
//
// Unlike Packer, the host key can be checked: against a known_hosts file or
// a pinned SHA256 fingerprint. Without either, Connect accepts any key, as
// Packer does, and says so once through Config.Say.
package sshcomm
