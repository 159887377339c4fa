// Dashboard template in the predecessor's style, written for thinger-patch's
// tests (not copied from anywhere): the dashboard JSON in concatenated C string
// literals, with its placeholders padded to 16 characters. DEVCNAME is the
// device; CLOUDNAM is the Thinger.io USER in these templates.
#pragma once
#include <Arduino.h>

const char thinger_dashboard_weather[] PROGMEM =
    "{\"name\":\"Weather DEVCNAME        \","
    "\"description\":\"Weather station \\\"outdoor\\\"\\t(\\u00b0C)\","
    "\"widgets\":[{\"layout\":{\"col\":0,\"row\":0,\"sizeX\":2,\"sizeY\":6},"
    "\"panel\":{\"color\":\"#ffffff\",\"title\":\"Temperature\"},"
    "\"type\":\"chart\","
    "\"sources\":[{\"device\":\"DEVCNAME        \",\"user\":\"CLOUDNAM        \","
    "\"resource\":\"temperature\",\"source\":\"device\",\"update\":\"events\"}]},"
    /* the second widget shows the raw id */
    "{\"layout\":{\"col\":2,\"row\":0,\"sizeX\":2,\"sizeY\":2},"
    "\"panel\":{\"title\":\"Device DEVCNAME        \"},\"type\":\"text\","
    "\"sources\":[{\"device\":\"DEVCNAME        \",\"user\":\"CLOUDNAM        \",\"resource\":\"DEVCNAME\"}]}"
    "],"
    "\"created\":\"2024-03-01T10:00:00Z\"}";
