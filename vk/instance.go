package vk

/*
#include <stdlib.h>
*/
import "C"

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"unsafe"

	vulkan "github.com/vulkan-go/vulkan"
)

// ValidationEnv names the environment variable that turns VK_LAYER_KHRONOS_validation on ("1") or off ("0") when
// InstanceOptions.Validation is ValidationFromEnv.
const ValidationEnv = "SQNET_VALIDATION"

// ValidationLayer is the Khronos validation layer's name.
const ValidationLayer = "VK_LAYER_KHRONOS_validation"

// ValidationMode says whether an instance enables the validation layer.
type ValidationMode int

const (
	// ValidationFromEnv enables validation when SQNET_VALIDATION=1.
	ValidationFromEnv ValidationMode = iota
	// ValidationOn always enables validation; it fails with ErrNoValidationLayer when the layer is missing.
	ValidationOn
	// ValidationOff never enables validation.
	ValidationOff
)

// InstanceOptions configures NewInstance.
type InstanceOptions struct {
	// Validation says whether to enable VK_LAYER_KHRONOS_validation and record its messages.
	Validation ValidationMode
	// Extensions are instance extensions to enable besides the validation layer's, e.g. the surface extensions a
	// window library needs for presentation (GLFW's GetRequiredInstanceExtensions). A missing one is an error.
	Extensions []string
}

// Message is one message the validation layer (or the driver) reported through VK_EXT_debug_report.
type Message struct {
	Severity string // "error", "warning" or "performance"
	Layer    string // the reporting layer's prefix, e.g. "Validation"
	Code     int32
	Text     string
}

func (m Message) String() string { return fmt.Sprintf("[%s %s] %s", m.Layer, m.Severity, m.Text) }

// Instance is a Vulkan instance, optionally with validation, that records every validation message.
type Instance struct {
	handle     vulkan.Instance
	callback   vulkan.DebugReportCallback
	validation bool
	key        unsafe.Pointer // C memory whose address identifies this instance to the debug callback
	procs      procs          // the functions called without vulkan-go (shim.go)
	log        *messageLog
	closed     bool
}

type messageLog struct {
	mu   sync.Mutex
	msgs []Message
}

// The debug-report callback is a single C entry point in vulkan-go; instances are told apart by the pUserData
// pointer each one registers, looked up here.
var (
	logsMu sync.Mutex
	logs   = map[uintptr]*messageLog{}
)

func debugReport(flags vulkan.DebugReportFlags, _ vulkan.DebugReportObjectType, _ uint64, _ uint, code int32,
	layer, msg string, user unsafe.Pointer) vulkan.Bool32 {
	logsMu.Lock()
	l := logs[uintptr(user)]
	logsMu.Unlock()
	if l == nil {
		return vulkan.False
	}
	sev := "warning"
	switch {
	case flags&vulkan.DebugReportFlags(vulkan.DebugReportErrorBit) != 0:
		sev = "error"
	case flags&vulkan.DebugReportFlags(vulkan.DebugReportPerformanceWarningBit) != 0:
		sev = "performance"
	}
	l.mu.Lock()
	// vulkan-go hands us strings that alias the layer's C buffers, valid only during the call: copy them.
	l.msgs = append(l.msgs, Message{Severity: sev, Layer: strings.Clone(strings.TrimSpace(layer)), Code: code,
		Text: strings.Clone(msg)})
	l.mu.Unlock()
	return vulkan.False // never abort the call: we want to see every message, not a different failure
}

func validationWanted(m ValidationMode) bool {
	switch m {
	case ValidationOn:
		return true
	case ValidationOff:
		return false
	}
	return os.Getenv(ValidationEnv) == "1"
}

func instanceLayers() ([]string, error) { return enumerateNames(true, "") }

func instanceExtensions(layer string) (map[string]bool, error) {
	names, err := enumerateNames(false, layer)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(names))
	for _, n := range names {
		out[n] = true
	}
	return out, nil
}

// NewInstance loads the Vulkan loader (once per process) and creates an instance for API 1.1. With validation it
// enables VK_LAYER_KHRONOS_validation and records every warning and error it reports; see Messages.
func NewInstance(opts InstanceOptions) (*Instance, error) {
	if err := loadVulkan(); err != nil {
		return nil, err
	}
	validation := validationWanted(opts.Validation)
	var layers, exts []string
	syncVal := false // whether the layer can check barriers too (VK_EXT_validation_features)
	if validation {
		have, err := instanceLayers()
		if err != nil {
			return nil, err
		}
		found := false
		for _, l := range have {
			found = found || l == ValidationLayer
		}
		if !found {
			return nil, ErrNoValidationLayer
		}
		layerExts, err := instanceExtensions(ValidationLayer)
		if err != nil {
			return nil, err
		}
		globalExts, err := instanceExtensions("")
		if err != nil {
			return nil, err
		}
		if !layerExts["VK_EXT_debug_report"] && !globalExts["VK_EXT_debug_report"] {
			return nil, fmt.Errorf("%w (it offers no VK_EXT_debug_report to report through)", ErrNoValidationLayer)
		}
		layers = []string{ValidationLayer + "\x00"}
		exts = []string{"VK_EXT_debug_report\x00"}
		syncVal = layerExts["VK_EXT_validation_features"]
		if syncVal {
			exts = append(exts, "VK_EXT_validation_features\x00")
		}
	}
	if len(opts.Extensions) > 0 {
		have, err := instanceExtensions("")
		if err != nil {
			return nil, err
		}
		for _, e := range opts.Extensions {
			if !have[e] {
				return nil, fmt.Errorf("%w: the Vulkan loader offers no instance extension %s", ErrNoPresent, e)
			}
			exts = append(exts, e+"\x00")
		}
	}
	app := vulkan.ApplicationInfo{
		SType:            vulkan.StructureTypeApplicationInfo,
		PApplicationName: "sqnet\x00",
		PEngineName:      "sqnet\x00",
		ApiVersion:       vulkan.MakeVersion(1, 1, 0),
	}
	info := vulkan.InstanceCreateInfo{
		SType:                   vulkan.StructureTypeInstanceCreateInfo,
		PApplicationInfo:        &app,
		EnabledLayerCount:       uint32(len(layers)),
		PpEnabledLayerNames:     layers,
		EnabledExtensionCount:   uint32(len(exts)),
		PpEnabledExtensionNames: exts,
	}
	in := &Instance{validation: validation, log: &messageLog{}}
	var cb vulkan.DebugReportCallbackCreateInfo
	if validation {
		in.key = C.malloc(1)
		logsMu.Lock()
		logs[uintptr(in.key)] = in.log
		logsMu.Unlock()
		cb = vulkan.DebugReportCallbackCreateInfo{
			SType: vulkan.StructureTypeDebugReportCallbackCreateInfo,
			Flags: vulkan.DebugReportFlags(vulkan.DebugReportErrorBit | vulkan.DebugReportWarningBit |
				vulkan.DebugReportPerformanceWarningBit),
			PfnCallback: debugReport,
			PUserData:   in.key,
		}
		// Chained into vkCreateInstance, the callback also hears what the layer says while the instance itself
		// is created and destroyed (leaked objects are reported then), where a separately created one is gone.
		ref, _ := cb.PassRef()
		info.PNext = unsafe.Pointer(ref)
		defer cb.Free()
		// Synchronization validation checks every barrier the recorder inserts (or leaves out): a missing one is a
		// SYNC-HAZARD error, so the tests prove the hazard tracking rather than trust it.
		if syncVal {
			if vf := syncValidationChain(info.PNext); vf != nil {
				info.PNext = vf
				defer freeC(vf)
			}
		}
	}
	var h vulkan.Instance
	if err := resultError("vkCreateInstance", vulkan.CreateInstance(&info, nil, &h)); err != nil {
		in.forget()
		return nil, err
	}
	if err := vulkan.InitInstance(h); err != nil {
		vulkan.DestroyInstance(h, nil)
		in.forget()
		return nil, fmt.Errorf("load instance functions: %v", err)
	}
	in.handle = h
	t, err := loadProcs(h)
	if err != nil {
		vulkan.DestroyInstance(h, nil)
		in.forget()
		return nil, err
	}
	in.procs = t
	if validation {
		var callback vulkan.DebugReportCallback
		if err := resultError("vkCreateDebugReportCallbackEXT",
			vulkan.CreateDebugReportCallback(h, &cb, nil, &callback)); err != nil {
			in.Close()
			return nil, err
		}
		in.callback = callback
	}
	return in, nil
}

// Validation reports whether the validation layer is enabled on this instance.
func (in *Instance) Validation() bool { return in.validation }

// Messages returns a copy of every validation message recorded so far, also after Close (teardown messages
// included).
func (in *Instance) Messages() []Message {
	in.log.mu.Lock()
	defer in.log.mu.Unlock()
	return append([]Message(nil), in.log.msgs...)
}

// Close destroys the instance. Devices opened from it must be closed first. Closing twice is harmless.
func (in *Instance) Close() {
	if in == nil || in.closed {
		return
	}
	in.closed = true
	if in.callback != vulkan.NullDebugReportCallback {
		vulkan.DestroyDebugReportCallback(in.handle, in.callback, nil)
	}
	vulkan.DestroyInstance(in.handle, nil)
	in.procs.free()
	in.forget()
}

// forget unregisters the instance from the debug callback's table.
func (in *Instance) forget() {
	if in.key != nil {
		logsMu.Lock()
		delete(logs, uintptr(in.key))
		logsMu.Unlock()
		C.free(in.key)
		in.key = nil
	}
}
