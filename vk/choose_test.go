package vk

import (
	"errors"
	"strings"
	"testing"

	vulkan "github.com/vulkan-go/vulkan"
)

func fakeDevices(types ...DeviceType) []DeviceInfo {
	out := make([]DeviceInfo, len(types))
	for i, t := range types {
		out[i] = DeviceInfo{Index: i, Name: string(t) + " device", Type: t, Usable: true}
	}
	return out
}

func TestChoose(t *testing.T) {
	t.Setenv(DeviceEnv, "")
	cases := []struct {
		name  string
		devs  []DeviceInfo
		sel   string
		want  int
		error string
	}{
		{"discrete beats all", fakeDevices(TypeCPU, TypeIntegrated, TypeDiscrete, TypeVirtual), "", 2, ""},
		{"integrated beats virtual and cpu", fakeDevices(TypeCPU, TypeVirtual, TypeIntegrated), "", 2, ""},
		{"virtual beats cpu", fakeDevices(TypeCPU, TypeVirtual), "", 1, ""},
		{"lowest index among equals", fakeDevices(TypeCPU, TypeCPU), "", 0, ""},
		{"by index", fakeDevices(TypeDiscrete, TypeCPU), "1", 1, ""},
		{"by name, any case", fakeDevices(TypeDiscrete, TypeCPU), "CPU dev", 1, ""},
		{"index out of range", fakeDevices(TypeCPU), "3", -1, "device 3"},
		{"negative index", fakeDevices(TypeCPU), "-1", -1, "device -1"},
		{"unknown name", fakeDevices(TypeCPU), "radeon", -1, `no device name contains "radeon"`},
		{"ambiguous name", fakeDevices(TypeCPU, TypeDiscrete), "device", -1, "matches 2 devices"},
		{"none", nil, "", -1, "no Vulkan device"},
		{"gpu:0 skips the CPU driver", fakeDevices(TypeCPU, TypeDiscrete, TypeDiscrete), "gpu:0", 1, ""},
		{"gpu:1", fakeDevices(TypeDiscrete, TypeCPU, TypeIntegrated), "GPU:1", 2, ""},
		{"gpu:N past the GPUs", fakeDevices(TypeDiscrete, TypeCPU), "gpu:1", -1, "fewer GPUs"},
		{"gpu: without a number", fakeDevices(TypeDiscrete), "gpu:x", -1, "want gpu:N"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Choose(c.devs, c.sel)
			if c.error == "" {
				if err != nil || got != c.want {
					t.Fatalf("Choose(%q) = %d, %v; want %d", c.sel, got, err, c.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.error) || !IsEnvironment(err) {
				t.Fatalf("Choose(%q) = %d, %v; want an environment error containing %q", c.sel, got, err, c.error)
			}
		})
	}
}

func TestChooseSkipsUnusableAndReadsEnv(t *testing.T) {
	devs := fakeDevices(TypeDiscrete, TypeCPU)
	devs[0].Usable, devs[0].Why = false, "Vulkan 1.0.0 < 1.1"
	t.Setenv(DeviceEnv, "")
	if got, err := Choose(devs, ""); err != nil || got != 1 {
		t.Fatalf("auto choice with an unusable discrete GPU = %d, %v; want 1", got, err)
	}
	if _, err := Choose(devs, "0"); err == nil || !strings.Contains(err.Error(), "1.0.0 < 1.1") {
		t.Fatalf("choosing the unusable device: %v", err)
	}
	t.Setenv(DeviceEnv, "discrete")
	if _, err := Choose(devs, ""); err == nil {
		t.Fatal("SQNET_DEVICE naming an unusable device was accepted")
	}
	if got, err := Choose(devs, "cpu"); err != nil || got != 1 {
		t.Fatalf("an explicit selection must win over SQNET_DEVICE: %d, %v", got, err)
	}
}

// TestResultErrors checks that results meaning a broken environment wrap the sentinels the CLI maps to exit 2.
func TestResultErrors(t *testing.T) {
	cases := []struct {
		r    vulkan.Result
		want error
	}{
		{vulkan.ErrorDeviceLost, ErrDeviceLost},
		{vulkan.ErrorOutOfDeviceMemory, ErrOutOfMemory},
		{vulkan.ErrorIncompatibleDriver, ErrNoDevice},
		{vulkan.ErrorLayerNotPresent, ErrNoValidationLayer},
	}
	for _, c := range cases {
		err := resultError("vkQueueSubmit", c.r)
		if !errors.Is(err, c.want) || !IsEnvironment(err) || !strings.HasPrefix(err.Error(), "vkQueueSubmit: ") {
			t.Errorf("%s: %v, want it to wrap %v", resultName(c.r), err, c.want)
		}
	}
	if resultError("x", vulkan.Success) != nil {
		t.Error("VK_SUCCESS gave an error")
	}
	if err := resultError("x", vulkan.ErrorFormatNotSupported); IsEnvironment(err) {
		t.Errorf("%v is not an environment error", err)
	}
}

// TestBlockFreeList exercises the suballocator's first-fit carving and coalescing.
func TestBlockFreeList(t *testing.T) {
	b := &block{size: 1024, free: []span{{0, 1024}}}
	var offs []uint64
	for i := 0; i < 4; i++ {
		off, ok := b.take(200, 256)
		if !ok {
			t.Fatalf("take %d failed: %v", i, b.free)
		}
		offs = append(offs, off)
	}
	if offs[0] != 0 || offs[1] != 256 || offs[2] != 512 || offs[3] != 768 {
		t.Fatalf("aligned offsets %v", offs)
	}
	if _, ok := b.take(100, 256); ok {
		t.Fatal("a full block (at 256-byte alignment) handed out more")
	}
	if off, ok := b.take(40, 8); !ok || off != 200 {
		t.Fatalf("the gap after the first buffer: off %d, %v (free %v)", off, ok, b.free)
	}
	b.give(200, 40)
	for _, off := range []uint64{256, 0, 768, 512} {
		b.give(off, 200)
	}
	if len(b.free) != 1 || b.free[0] != (span{0, 1024}) {
		t.Fatalf("after freeing everything the free list is %v, want one span of 1024", b.free)
	}
}
