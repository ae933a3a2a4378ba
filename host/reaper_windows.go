//go:build windows

package host

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/windows"
)

// jobHandle is the job object this process put itself in; it is never
// closed, so the system closes it when the process exits and then kills
// every process in the job.
var jobHandle windows.Handle

// AdoptOrphans puts this process in a new job object with
// JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE: every process started from now on
// inherits the job, and all of them are killed when this process exits,
// however it exits. It fails when this process is in a job that forbids
// nesting.
func AdoptOrphans() error {
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return fmt.Errorf("CreateJobObject: %w", err)
	}
	info := windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION{
		BasicLimitInformation: windows.JOBOBJECT_BASIC_LIMIT_INFORMATION{
			LimitFlags: windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
		},
	}
	if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		windows.CloseHandle(job)
		return fmt.Errorf("SetInformationJobObject: %w", err)
	}
	if err := windows.AssignProcessToJobObject(job, windows.CurrentProcess()); err != nil {
		windows.CloseHandle(job)
		return fmt.Errorf("AssignProcessToJobObject: %w", err)
	}
	jobHandle = job
	return nil
}

// KillOrphans does nothing and returns 0: the job kills every process in
// it when this process exits.
func KillOrphans() int { return 0 }
