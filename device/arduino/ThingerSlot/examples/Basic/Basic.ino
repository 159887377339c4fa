/*
 * ThingerSlot - Basic
 *
 * A Thinger.io device whose WiFi and Thinger.io settings are not in the source code. Build this
 * sketch once (Sketch > Export Compiled Binary, or `pio run`), then write each device's values
 * into the compiled firmware with thinger-patch, without recompiling:
 *
 *   thinger-patch patch Basic.ino.bin --set wifi_ssid=MyWiFi --set-env wifi_password=WIFI_PASS \
 *       --set thinger_user=alice --set thinger_device=kitchen \
 *       --set-env thinger_credentials=KITCHEN_CREDS
 *
 * and flash the result. `thinger-patch inspect Basic.ino.bin` lists the slots.
 *
 * Needs the Thinger.io Arduino library ("thinger.io" in the Library Manager).
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */

// #define THINGER_SERIAL_DEBUG

#include <ThingerSlot.h>

#if defined(ESP8266)
#include <ThingerESP8266.h>
#else
#include <ThingerESP32.h>
#endif

// wifi_ssid, wifi_password, thinger_host ("iot.thinger.io" unless patched), thinger_user,
// thinger_device and thinger_credentials.
THINGER_STANDARD_SLOTS();

// Any other setting works the same way: identifier, key, capacity, default, flags.
THINGER_SLOT_NAMED(fw_version, "fw.version", 16, "dev", 0);

// The Thinger.io library keeps these pointers: THINGER_SLOT_VALUE is valid for the whole program.
#if defined(ESP8266)
ThingerESP8266 thing(THINGER_SLOT_VALUE(thinger_user), THINGER_SLOT_VALUE(thinger_device),
                     THINGER_SLOT_VALUE(thinger_credentials));
#else
ThingerESP32 thing(THINGER_SLOT_VALUE(thinger_user), THINGER_SLOT_VALUE(thinger_device),
                   THINGER_SLOT_VALUE(thinger_credentials));
#endif

void setup()
{
    Serial.begin(115200);

    thing.set_host(THINGER_SLOT_VALUE(thinger_host));
    thing.add_wifi(THINGER_SLOT_VALUE(wifi_ssid), THINGER_SLOT_VALUE(wifi_password));

    if (!THINGER_SLOT_IS_PATCHED(wifi_ssid) || !THINGER_SLOT_IS_PATCHED(thinger_device)) {
        Serial.println(F("This firmware is not personalised yet: run thinger-patch on the .bin"));
    }
    Serial.print(F("firmware "));
    Serial.println(THINGER_SLOT_VALUE(fw_version));

#ifdef LED_BUILTIN
    pinMode(LED_BUILTIN, OUTPUT);
    thing["led"] << digitalPin(LED_BUILTIN);
#endif
    thing["fw_version"] >> [](pson &out) { out = THINGER_SLOT_VALUE(fw_version); };
    thing["millis"] >> outputValue(millis());
}

void loop()
{
    thing.handle();
}
