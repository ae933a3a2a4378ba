package host

// Orphans. A plugin can leave processes behind: a script's background job,
// a daemon that called setsid(), anything whose parent exited before it.
// The host kills a plugin's process group, which does not reach processes
// that left it. [AdoptOrphans] and [KillOrphans] close that gap for a
// program that runs plugins (packer): called at its start and at its end,
// nothing the plugins started outlives it, on the systems that allow it:
//
//   - Linux: the program becomes a child subreaper (prctl
//     PR_SET_CHILD_SUBREAPER), so every process its descendants leave
//     behind is re-parented to it rather than to init; KillOrphans kills
//     every remaining descendant (found through /proc) and reaps them.
//     Adopted processes that exit before then stay zombies until
//     KillOrphans reaps them; they hold a process id, nothing else.
//   - Windows: the program puts itself in a job object that kills every
//     process in it when its last handle closes, that is when the program
//     exits, however it exits; children inherit the job. KillOrphans does
//     nothing more.
//   - Other systems: AdoptOrphans returns an error wrapping
//     errors.ErrUnsupported and KillOrphans does nothing; processes that
//     left their plugin's process group survive.
//
// When the program itself is killed with SIGKILL, nothing runs at its end:
// on Linux a plugin still dies (its parent-death signal), but processes it
// left behind, and the children of its children, survive unless they have
// a parent-death signal of their own (the builtin shell-local gives one to
// the scripts it runs); on Windows the job still kills everything.
