"""The demo's knowledge base: warranty, installation and error-code articles in Chinese and English.

Pure data plus :func:`seed_kb`, which imports them through :func:`cti.kb.articles.import_articles`
(exactly what ``cti kb import`` does) when the knowledge base is empty. Tags ``ivr:<digit>`` put an
article first on the pop of a caller who pressed that digit (1 mobile, 2 appliances, 3 complaints).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from cti.db.tables import kb_articles
from cti.kb.articles import import_articles

log = structlog.get_logger(__name__)

ARTICLES: tuple[dict[str, Any], ...] = (
    {"product_line": "appliances", "tags": "warranty 保修 ivr:2",
     "title": "家电保修政策：整机一年，压缩机和电机三年",
     "body": "美的、海尔、格力等家电整机保修一年，冰箱和空调压缩机、洗衣机电机保修三年，自购买日起计算。"
             "请客户提供购买发票或电子订单号。人为损坏、私自拆修、商用使用不在保修范围内。保修期内上门维修免费。"},
    {"product_line": "appliances", "tags": "warranty ivr:2",
     "title": "Appliance warranty: one year whole unit, three years compressor and motor",
     "body": "Appliances are covered for one year from the purchase date; refrigerator and air-conditioner "
             "compressors and washing-machine motors for three years. Ask for the invoice or the online order "
             "number. Damage by misuse, unauthorised repair or commercial use is not covered. In-home repair "
             "within the warranty is free of charge."},
    {"product_line": "appliances", "tags": "installation 安装 空调",
     "title": "空调安装预约流程与收费标准",
     "body": "空调购买后可预约免费标准安装（含3米铜管、支架、打孔一个）。超出部分按价目表收费：铜管每米80元，"
             "高空作业费100元。预约后师傅24小时内电话确认上门时间；迟到超过1小时可登记投诉并赠送延保半年。"},
    {"product_line": "appliances", "tags": "installation air-conditioner",
     "title": "Air-conditioner installation: booking and charges",
     "body": "Standard installation is free (3 m copper pipe, bracket, one wall hole). Extras follow the price "
             "list: copper pipe 80 yuan per metre, high-altitude work 100 yuan. The installer calls within 24 hours "
             "to confirm the visit; more than one hour late: record a complaint and offer six months' extra warranty."},
    {"product_line": "appliances", "tags": "error-code 故障码 微波炉 microwave",
     "title": "微波炉不加热：故障码 E1/E2/E3 含义与处理",
     "body": "E1：门开关未闭合，请客户重新关门或检查门钩。E2：磁控管过热，断电冷却30分钟后再试。"
             "E3：温度传感器故障，需上门检测。若屏幕无故障码但不加热，多为高压二极管损坏，安排维修。"},
    {"product_line": "appliances", "tags": "error-code microwave",
     "title": "Microwave does not heat: error codes E1, E2, E3",
     "body": "E1: the door switch is open; close the door again or check the door hooks. E2: the magnetron "
             "overheated; unplug for 30 minutes and try again. E3: temperature sensor fault, book an engineer. "
             "No code but no heat: usually the high-voltage diode, book a repair."},
    {"product_line": "appliances", "tags": "error-code 故障码 洗衣机 冰箱",
     "title": "洗衣机 E21 排水故障、冰箱 F3 温控故障",
     "body": "洗衣机 E21：排水超时，请客户清理排水泵过滤器并检查排水管是否弯折。冰箱 F3：冷藏室传感器故障，"
             "断电5分钟重启；仍报 F3 则安排上门更换传感器（保修期内免费）。"},
    {"product_line": "mobile", "tags": "warranty 保修 手机 ivr:1",
     "title": "手机保修：屏幕碎裂是否保修",
     "body": "手机整机保修一年，电池保修六个月。屏幕碎裂属于人为损坏，不在免费保修范围，可按官方价格付费更换屏幕；"
             "购买了碎屏险的客户可免费更换一次。若客户表示屏幕自行开裂且无外力痕迹，请登记工单由检测中心判定。"},
    {"product_line": "mobile", "tags": "warranty screen ivr:1",
     "title": "Phone warranty: is a cracked screen covered?",
     "body": "Phones have a one-year warranty, batteries six months. A cracked screen is accidental damage and "
             "not covered; a paid screen replacement is available at the official price, and customers with "
             "screen insurance get one free replacement. A screen that cracked without impact: open a ticket, "
             "the inspection centre decides."},
    {"product_line": "mobile", "tags": "error-code 故障码 充电",
     "title": "Phone X 无法充电：提示“配件不受支持”",
     "body": "请客户使用原装充电器和数据线，清洁充电口。重启后仍提示“配件不受支持”或充电图标闪烁，"
             "多为充电口损坏，保修期内免费维修。电池健康度低于80%可付费更换电池。"},
    {"product_line": "mobile", "tags": "error-code charging",
     "title": "Phone X will not charge: \"accessory not supported\"",
     "body": "Ask the customer to use the original charger and cable and to clean the charging port. If the "
             "message or a blinking charging icon remains after a restart, the port is usually damaged: free "
             "repair within the warranty. Battery health below 80 %: a paid battery replacement."},
    {"product_line": "mobile", "tags": "installation setup 数据迁移",
     "title": "新手机数据迁移与激活",
     "body": "新机开机后选择“从旧设备迁移”，两台手机靠近并连接同一 Wi-Fi，按提示扫码即可迁移联系人、照片和应用。"
             "激活需插入 SIM 卡并联网。迁移中断可重新开始，不会丢失旧手机数据。"},
    {"product_line": "office", "tags": "error-code 故障码 打印机 printer",
     "title": "LaserJet 400 打印机卡纸与错误 13.20",
     "body": "错误 13.20 表示纸路卡纸：关闭电源，打开后盖取出纸张，检查硒鼓下方有无碎纸。"
             "频繁卡纸请更换搓纸轮（保修期内免费）。建议使用 70-80 克 A4 纸。"},
    {"product_line": "office", "tags": "error-code printer installation",
     "title": "LaserJet 400: paper jam error 13.20 and driver installation",
     "body": "Error 13.20 is a jam in the paper path: switch off, open the rear door, remove the paper and check "
             "under the toner cartridge. Frequent jams: replace the pickup roller (free within the warranty). "
             "Driver: download from the support site, choose the USB or network connection, print a test page."},
    {"product_line": None, "tags": "complaint 投诉 ivr:3",
     "title": "投诉处理：首次响应时限与升级流程",
     "body": "投诉须在4小时内首次回复客户。超时未回复，系统自动升级给产品线负责人的上级，再升级给客服总监。"
             "接听投诉时先致歉、复述问题、告知工单号和预计回复时间，不要在投诉电话中推销产品。"},
    {"product_line": None, "tags": "complaint escalation ivr:3",
     "title": "Complaints: first-response deadline and escalation",
     "body": "A complaint gets a first answer within 4 hours. Past the deadline it escalates to the product-line "
             "owner's manager, then to the customer-care director. On a complaint call: apologise, repeat the "
             "problem, give the ticket number and when the customer will hear back; do not sell on a complaint call."},
)


async def seed_kb(conn: AsyncConnection, now: datetime) -> int:
    """Import :data:`ARTICLES` into an empty knowledge base; returns how many (0: it had articles)."""
    if (await conn.execute(select(func.count()).select_from(kb_articles))).scalar_one():
        return 0
    n = await import_articles(conn, ARTICLES, now)
    log.info("demo.kb_seeded", articles=n)
    return n
