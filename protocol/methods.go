package protocol

// IsNotificationMethod reports whether method is one that SPEC §1.2 lists
// as a notification: the ui/* messages other than ui/ask, and
// $/cancelRequest. Such a method sent with an id is answered with
// [ErrMethodNotFound] and not acted upon; any other method sent without an
// id is ignored.
func IsNotificationMethod(method string) bool {
	switch method {
	case MethodUISay, MethodUIMessage, MethodUIError, MethodUIMachine, MethodUIProgress, MethodCancelRequest:
		return true
	}
	return false
}
