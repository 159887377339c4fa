/*
 * thinger-patch + PlatformIO example, ESP8266 (Arduino).
 *
 * The WiFi and Thinger.io settings are not in this file: they are slots, which thinger-patch
 * fills in after the build, once per profile of thinger-patch.toml (see platformio.ini).
 * `thinger-patch inspect .pio/build/d1_mini/firmware.kitchen.bin` lists them.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include <Arduino.h>
#include <ThingerESP8266.h>
#include <ThingerSlot.h>

// wifi_ssid, wifi_password, thinger_host ("iot.thinger.io" unless patched), thinger_user,
// thinger_device and thinger_credentials.
THINGER_STANDARD_SLOTS();
// Any other setting: identifier, key, capacity, default, flags.
THINGER_SLOT_NAMED(fw_version, "fw.version", 16, "dev", 0);

// THINGER_SLOT_VALUE is valid for the whole program (on the ESP8266 a record in flash is copied
// once into RAM), so the library may keep these pointers.
ThingerESP8266 thing(THINGER_SLOT_VALUE(thinger_user), THINGER_SLOT_VALUE(thinger_device),
                     THINGER_SLOT_VALUE(thinger_credentials));

void setup()
{
    Serial.begin(115200);
    Serial.print(F("\nfirmware "));
    Serial.print(THINGER_SLOT_VALUE(fw_version));
    Serial.print(F(", device "));
    Serial.println(THINGER_SLOT_VALUE(thinger_device));
    if (!THINGER_SLOT_IS_PATCHED(wifi_ssid) || !THINGER_SLOT_IS_PATCHED(thinger_device)) {
        Serial.println(F("not personalised: flash .pio/build/d1_mini/firmware.<profile>.bin"));
    }

    thing.set_host(THINGER_SLOT_VALUE(thinger_host));
    thing.add_wifi(THINGER_SLOT_VALUE(wifi_ssid), THINGER_SLOT_VALUE(wifi_password));

    pinMode(LED_BUILTIN, OUTPUT);
    thing["led"] << digitalPin(LED_BUILTIN);
    thing["fw_version"] >> [](pson &out) { out = THINGER_SLOT_VALUE(fw_version); };
    thing["millis"] >> outputValue(millis());
}

void loop()
{
    thing.handle();
}
