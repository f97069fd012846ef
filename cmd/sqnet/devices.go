package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sqnet/sqnet/vk"
)

func newDevicesCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "devices",
		Short: "List Vulkan devices, their limits, and which one sqnet would use",
		Args:  noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			in, err := vk.NewInstance(g.vkOptions().Instance)
			if err != nil {
				return err
			}
			defer in.Close()
			devs, err := in.Devices()
			if err != nil {
				return err
			}
			pick, pickErr := vk.Choose(devs, g.device)
			out := c.OutOrStdout()
			if asJSON {
				if err := writeDevicesJSON(out, devs, pick); err != nil {
					return err
				}
			} else {
				writeDevicesTable(out, devs, pick)
			}
			return pickErr
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	return c
}

// noArgs rejects positional arguments as a usage error.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("%s takes no arguments, got %q", c.CommandPath(), strings.Join(args, " "))}
	}
	return nil
}

func writeDevicesJSON(w io.Writer, devs []vk.DeviceInfo, pick int) error {
	doc := struct {
		Devices []vk.DeviceInfo `json:"devices"`
		Picked  *int            `json:"picked"`
	}{Devices: devs}
	if pick >= 0 {
		doc.Picked = &pick
	}
	return printJSON(w, doc)
}

func writeDevicesTable(w io.Writer, devs []vk.DeviceInfo, pick int) {
	for _, d := range devs {
		mark := " "
		if d.Index == pick {
			mark = "*"
		}
		fmt.Fprintf(w, "%s %d  %s\n", mark, d.Index, d.Name)
		driver := d.Driver
		if d.DriverInfo != "" {
			driver += " (" + d.DriverInfo + ")"
		}
		fmt.Fprintf(w, "     type %s · vendor %s (0x%04x) · device 0x%04x · driver %s %s · Vulkan %s\n",
			d.Type, d.Vendor, d.VendorID, d.DeviceID, driver, d.DriverVer, d.APIVersion)
		for _, h := range d.Heaps {
			kind := "host"
			if h.DeviceLocal {
				kind = "device-local"
			}
			if h.HostVisible {
				kind += ", host-visible"
			}
			fmt.Fprintf(w, "     memory heap %d: %s (%s)\n", h.Index, vk.HumanBytes(h.Size), kind)
		}
		l := d.Limits
		sub := "n/a"
		if l.SubgroupSize > 0 {
			sub = fmt.Sprint(l.SubgroupSize)
		}
		fmt.Fprintf(w, "     compute: workgroup ≤ %d×%d×%d, %d invocations, groups ≤ %d×%d×%d, shared %s, subgroup %s, push %d B\n",
			l.MaxWorkgroupSize[0], l.MaxWorkgroupSize[1], l.MaxWorkgroupSize[2], l.MaxWorkgroupInvocations,
			l.MaxWorkgroupCount[0], l.MaxWorkgroupCount[1], l.MaxWorkgroupCount[2],
			vk.HumanBytes(uint64(l.MaxSharedMemory)), sub, l.MaxPushConstants)
		alloc := "n/a"
		if l.MaxMemoryAllocationSize > 0 {
			alloc = vk.HumanBytes(l.MaxMemoryAllocationSize)
		}
		fmt.Fprintf(w, "     buffers: storage range ≤ %s, offset alignment %d B, allocation ≤ %s, timestamps %g ns/tick\n",
			vk.HumanBytes(l.MaxStorageBufferRange), l.MinStorageBufferAlignment, alloc, l.TimestampPeriod)
		if !d.Usable {
			fmt.Fprintf(w, "     not usable: %s\n", d.Why)
		}
	}
	if pick >= 0 {
		fmt.Fprintf(w, "sqnet would use device %d (%s); choose another with --device N|name or %s.\n", pick,
			devs[pick].Name, vk.DeviceEnv)
	}
}
