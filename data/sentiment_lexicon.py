"""The words and phrases that data/make_data.py builds its review sentences from (data only, no code but a splitter).

A classifier trained on these sentences learns whatever vocabulary they hold and no other, so the lists are long:
the things people review (DOMAINS, each with the parts of it they talk about, the words they praise and fault
them with, and what happens when it is good or bad) and the everyday opinion language that fits any of them.
Items are separated by "|"; a clause has no final full stop and starts in lower case. "{it}" stands for the
pronoun of the reviewed thing ("it" or "them").
"""

from __future__ import annotations

from typing import NamedTuple


def items(text: str) -> list[str]:
    return [item.strip() for item in text.split("|") if item.strip()]


class Domain(NamedTuple):
    kind: str           # place, product, media, service or software: picks the experiences below that fit
    things: list[str]   # what is reviewed, as a subject: "this place"
    aspects: list[str]  # the parts of it reviews talk about: "the staff"
    pos: list[str]      # adjectives that praise those aspects (on top of POS_ADJ)
    neg: list[str]      # adjectives that fault them; mild enough that "not X" reads as praise
    good: list[str]     # clauses that say it is good without an opinion word
    bad: list[str]
    again: list[str]    # what one does again if it was good: "I'd {again}", "I won't {again}"
    context: list[str]  # label-free facts about the visit, purchase or viewing


def domain(kind, things, aspects, pos, neg, good, bad, again, context) -> Domain:
    return Domain(kind, *(items(text) for text in (things, aspects, pos, neg, good, bad, again, context)))


DOMAINS = {
    "restaurant": domain(
        "place",
        "this restaurant | this place | the restaurant | the bistro | this steakhouse | the new Thai place | "
        "the sushi bar | the diner | this pizzeria | the tapas bar",
        "the food | the service | the staff | our waiter | the waitress | the menu | the pasta | the steak | "
        "the curry | the pizza | the burger | the fries | the dessert | the portions | the prices | the wine list | "
        "the atmosphere | the decor | the noodles | the sushi | the starters | the soup | the chicken",
        "delicious | tasty | fresh | flavourful | perfectly cooked | tender | crispy | generous | friendly | "
        "attentive | welcoming | authentic | mouth-watering | juicy | cosy | reasonable",
        "bland | greasy | overcooked | undercooked | cold | soggy | salty | tiny | overpriced | rude | slow | "
        "chewy | dry | stale | tasteless | rubbery | burnt | lukewarm",
        "we cleaned our plates | every dish was better than the last | the chef came out to say hello | "
        "they brought us free dessert | the steak was cooked exactly how I asked | we got a table right away | "
        "the waiter remembered our names | the portions were huge | I'm still dreaming about the pasta | "
        "the kitchen happily made everything gluten free | the lunch menu is a bargain | everything tastes homemade | the waiter's wine tip was spot on",
        "we waited an hour for our mains | I found a hair in my soup | the waiter ignored us all night | "
        "half the menu was unavailable | they got our order wrong twice | I got food poisoning | "
        "the bill had extra charges on it | we had to ask three times for water | the table was sticky | "
        "the music was so loud we had to shout | our starters came after the mains | the burger was raw in the middle | they hurried us out to free up the table",
        "eat here again | come back | go back | book a table again",
        "we went for my birthday | we came on a Friday night | it was our anniversary dinner | "
        "I went with a few colleagues | we booked a table for six | we ordered the tasting menu | "
        "we sat outside on the terrace"),
    "cafe": domain(
        "place",
        "this cafe | this coffee shop | the bakery | the little cafe on the corner | this tea room | "
        "the brunch spot",
        "the coffee | the latte | the cappuccino | the pastries | the croissants | the cakes | the brunch | "
        "the barista | the staff | the tea | the muffin | the avocado toast | the seating | the music | the wifi",
        "delicious | fresh | smooth | rich | flaky | cosy | friendly | warm | charming | homemade | quick",
        "burnt | watery | lukewarm | stale | bitter | dry | cramped | slow | overpriced | grumpy | sugary",
        "the barista drew a heart in my latte | the croissants were still warm | it's the best flat white in town | "
        "they know my order by heart | it's the perfect place to read for an hour | "
        "they let us stay for hours with our laptops | the cakes are baked on site",
        "my coffee was cold by the time it arrived | they ran out of pastries by ten | "
        "the barista rolled her eyes at me | there was nowhere to sit | the milk tasted off | "
        "the cup was chipped | they forgot my order three mornings in a row",
        "come back | go back | stop by again",
        "I stopped in before work | we popped in for brunch on Sunday | I come here most mornings | "
        "I grabbed a coffee on the way to the station"),
    "bar": domain(
        "place",
        "this bar | the pub | this cocktail bar | the wine bar | the brewery | the rooftop bar | this club",
        "the cocktails | the beer | the drinks | the bartender | the music | the vibe | the crowd | the bouncers | "
        "the snacks | the DJ | the happy hour",
        "buzzing | lively | friendly | creative | strong | refreshing | chilled | reasonable | cosy",
        "watered-down | overpriced | sticky | rude | loud | warm | flat | crowded | slow | dingy",
        "the bartender made us something off the menu | we danced all night | the happy hour deals are unbeatable | "
        "the live band was fantastic",
        "we waited twenty minutes to get served | the bouncer was aggressive | my cocktail was mostly ice | "
        "they charged us for drinks we never ordered | the toilets were disgusting",
        "come back | go back | drink here again",
        "we went for a friend's leaving drinks | we dropped in after work | it was a Saturday night"),
    "hotel": domain(
        "place",
        "this hotel | the hotel | the resort | the hostel | our room | the apartment | the B&B | the guesthouse | "
        "the villa | this motel",
        "the room | the bed | the staff | the reception | the breakfast | the pool | the view | the location | "
        "the bathroom | the shower | the wifi | the check-in | the housekeeping | the beds | the pillows | the spa | "
        "the air conditioning | the lobby | the front desk",
        "clean | spotless | spacious | comfortable | quiet | cosy | helpful | central | stunning | modern | "
        "relaxing | welcoming | immaculate | convenient",
        "dirty | cramped | noisy | tiny | rude | outdated | dusty | uncomfortable | smelly | shabby | cold | "
        "overpriced | mouldy | unhelpful",
        "they upgraded us to a suite | the bed was like sleeping on a cloud | the breakfast buffet had everything | "
        "the staff left a cake for our anniversary | we had a sea view from the balcony | "
        "the room was cleaned every day | "
        "the room was ready two hours early | the beds were so comfy we overslept | the concierge booked us a table at a great little place",
        "there were stains on the sheets | the shower was cold every morning | we could hear the traffic all night | "
        "the room smelled of smoke | they lost our booking | the pool was closed the whole week | "
        "we found bugs in the bed | the wifi only worked in the lobby | "
        "the towels were never changed | reception shrugged at every complaint | the photos online must be ten years old | the lift was broken for our whole stay",
        "stay here again | come back | book this place again | stay with them again",
        "we stayed three nights | we booked it for our honeymoon | I stayed here for a work trip | "
        "we checked in late on Friday | we stayed a week in August"),
    "travel": domain(
        "service",
        "the trip | our holiday | the tour | the cruise | the guided tour | this travel agency | the package holiday | "
        "the day trip | the excursion | the boat tour",
        "the guide | the itinerary | the bus | the schedule | the food | the organisation | the hotels | "
        "the transfers | the tour guide | the excursions | the views | the price",
        "well organised | unforgettable | breathtaking | relaxing | knowledgeable | smooth | fun | "
        "informative | magical | good value",
        "rushed | disorganised | overpriced | boring | exhausting | chaotic | crowded | late | stressful",
        "the guide knew every little story about the town | everything ran like clockwork | "
        "we saw dolphins on the way back | it was the holiday of a lifetime",
        "the bus broke down twice | we spent more time in queues than sightseeing | "
        "the guide barely spoke | the hotel they booked was a dump | they cancelled the boat trip without notice",
        "book with them again | travel with them again | do it again",
        "we booked it last minute | it was our first time abroad with the kids | we went in the off season"),
    "airline": domain(
        "service",
        "the flight | this airline | the airline | our flight | the connecting flight | the budget airline",
        "the crew | the cabin crew | the seats | the legroom | the boarding | the food | the entertainment | "
        "the check-in | the baggage service | the pilot",
        "friendly | comfortable | punctual | smooth | professional | spacious | efficient | on time",
        "cramped | delayed | rude | uncomfortable | chaotic | dirty | late | disorganised",
        "we landed twenty minutes early | the crew were lovely to my kids | boarding took ten minutes | "
        "they found me a seat with extra legroom",
        "they lost my luggage | the flight was delayed six hours | they cancelled our flight with no explanation | "
        "I was charged for my carry-on | nobody told us which gate to go to",
        "fly with them again | book with them again | fly this airline again",
        "we flew to Lisbon in May | it was a short domestic flight | I fly this route every month"),
    "film": domain(
        "media",
        "the film | this movie | the movie | the new Marvel film | this documentary | the sequel | the remake | "
        "this thriller | the horror film | this comedy | the animated film",
        "the acting | the plot | the story | the ending | the script | the dialogue | the soundtrack | the visuals | "
        "the cast | the lead actor | the villain | the special effects | the pacing | the jokes | the twist | "
        "the cinematography | the characters",
        "gripping | moving | hilarious | clever | beautiful | stunning | powerful | heartwarming | thrilling | "
        "original | touching | funny | tense | gorgeous | well written | charming",
        "boring | predictable | slow | confusing | silly | cheesy | dull | forgettable | pointless | "
        "cringeworthy | shallow | clichéd | wooden | messy | flat | dragged",
        "I was on the edge of my seat the whole time | I cried at the end | the whole cinema was laughing | "
        "I didn't see the twist coming | it stayed with me for days | the two hours flew by | "
        "every shot looks like a painting | the leads have amazing chemistry | the final scene gave me chills",
        "I nearly fell asleep | I checked my phone every five minutes | we walked out halfway through | "
        "the plot had more holes than a sieve | I guessed the ending in the first ten minutes | "
        "it felt like it lasted four hours | "
        "the jokes fell flat | the villain's plan made no sense | people around us were yawning",
        "watch it again | see it again",
        "I watched it with my partner | we saw it at the cinema on opening night | I streamed it on a Sunday "
        "afternoon | I went in knowing nothing about it"),
    "tv": domain(
        "media",
        "the show | this series | the new season | the first season | the finale | this sitcom | the TV show | "
        "the miniseries | this reality show | the podcast",
        "the characters | the writing | the acting | the episodes | the storyline | the humour | the pilot | "
        "the host | the final episode | the pacing | the cliffhanger",
        "addictive | binge-worthy | hilarious | gripping | brilliant | clever | bingeable | heartwarming | "
        "well written | entertaining",
        "boring | repetitive | predictable | slow | dragged out | silly | unfunny | confusing | lazy",
        "I binged the whole thing in a weekend | I can't wait for the next season | "
        "every episode ends on a cliffhanger | I laughed out loud every episode | "
        "every character gets a proper arc | each season is better than the last",
        "I gave up after three episodes | every episode is the same | they ruined the characters | "
        "the finale made no sense | nothing happens for five episodes | "
        "they killed off the best character for no reason | the dialogue is painfully stiff",
        "watch it again | keep watching | rewatch it",
        "I started it on a friend's advice | we watch one episode every night | I caught up over the holidays"),
    "book": domain(
        "media",
        "the book | this novel | the memoir | this thriller | the sequel | the cookbook | this biography | "
        "the audiobook | the short story collection",
        "the writing | the characters | the plot | the ending | the prose | the narrator | the first chapter | "
        "the dialogue | the story | the pacing | the recipes | the author",
        "beautifully written | gripping | moving | funny | insightful | engaging | clever | poignant | "
        "page-turning | well researched | unputdownable",
        "boring | slow | predictable | confusing | repetitive | dull | shallow | pretentious | tedious | flat",
        "I couldn't put it down | I finished it in one sitting | I stayed up until three reading it | "
        "I've already bought her next one | I underlined half the pages | "
        "I was sad when it ended | the world building is incredible",
        "I couldn't get past the first fifty pages | I had to force myself to finish it | "
        "the ending felt rushed | I skimmed the last hundred pages | "
        "the twist was obvious from the start | the characters never come alive",
        "read it again | read more from this author | reread it",
        "I read it on holiday | my book club picked it | I listened to it on my commute"),
    "music": domain(
        "media",
        "the album | this album | the new single | the record | the EP | this song | the playlist | the debut album",
        "the vocals | the lyrics | the production | the beats | the melodies | the chorus | the guitar | "
        "the first track | the sound | the mixing | the bass",
        "catchy | beautiful | haunting | fresh | uplifting | soulful | powerful | gorgeous | infectious | "
        "tight | mellow",
        "boring | repetitive | bland | forgettable | generic | overproduced | whiny | flat | muddy | dull",
        "I've had it on repeat all week | the songs get stuck in my head | it gets better with every listen | "
        "I got chills on the first track | "
        "there isn't a weak track on it | it sounds even better live",
        "every song sounds the same | I skipped half the tracks | I couldn't make it to the end | "
        "it sounds like a cheap copy of their old stuff | "
        "the lyrics are embarrassing | the whole album blurs together",
        "listen to it again | buy their next album | put it on again",
        "I listened to it on a long drive | I bought it on vinyl | I've followed the band for years"),
    "concert": domain(
        "media",
        "the concert | the gig | the show | the musical | the play | the festival | the comedy show | the opera | "
        "the ballet",
        "the band | the singer | the setlist | the sound | the venue | the crowd | the lighting | the cast | "
        "the seats | the performance | the encore | the support act",
        "electric | amazing | unforgettable | energetic | spectacular | flawless | stunning | tight | moving",
        "muddy | quiet | short | chaotic | overpriced | crowded | sloppy | boring | lifeless | disorganised",
        "the whole crowd was singing along | they played for nearly three hours | I got goosebumps | "
        "we danced until our feet hurt | the cast got a standing ovation",
        "the band came on an hour late | we couldn't hear the vocals | the queue for drinks took forever | "
        "they only played for forty minutes | the person in front of us filmed the whole thing",
        "see them again | go again | see it again",
        "we got tickets for my sister's birthday | we were in the back row | it was their last night on tour"),
    "phone": domain(
        "product",
        "this phone | the phone | my new phone | the handset | this smartphone | the budget phone | the flagship",
        "the battery | the camera | the screen | the display | the speakers | the software | the design | "
        "the face unlock | the charging | the fingerprint sensor | the signal | the build quality",
        "fast | sleek | sharp | bright | responsive | snappy | smooth | solid | gorgeous | reliable | crisp",
        "slow | laggy | glitchy | flimsy | dim | grainy | buggy | sluggish | unreliable | fragile | bulky",
        "the battery lasts two full days | the camera takes amazing photos at night | it charges in half an hour | "
        "it survived a drop onto concrete | it runs every app without a hiccup | "
        "it's bright enough to read in full sun | it still feels new after a year",
        "the battery is dead by lunchtime | it overheats when I play games | the screen cracked in the first week | "
        "it freezes every time I open the camera | it keeps dropping calls | "
        "the camera app takes ages to open | the latest update made it even slower | it burns my hand when I play videos",
        "buy it again | buy another one from them | upgrade to the next model",
        "I switched from an older model | I bought it for my mum | I've had it for three months | "
        "I use it mostly for photos"),
    "laptop": domain(
        "product",
        "this laptop | the laptop | my new laptop | the notebook | this computer | the desktop | the tablet | "
        "the monitor | the keyboard | the mouse",
        "the keyboard | the trackpad | the screen | the battery | the performance | the fans | the speakers | "
        "the webcam | the build | the ports | the hinge",
        "fast | light | powerful | quiet | sleek | responsive | sturdy | crisp | comfortable | portable",
        "slow | heavy | noisy | flimsy | hot | laggy | clunky | cheap | dim | unreliable | loud",
        "it boots in seconds | the battery gets me through a full workday | it handles video editing easily | "
        "it's light enough to carry everywhere | "
        "it stays cool even when I'm editing video | the screen is gorgeous for films",
        "it crashes every few hours | the fan sounds like a jet engine | the hinge snapped after a month | "
        "it takes five minutes to boot | half the keys stopped working | "
        "the trackpad stops responding randomly | it sounds like a hair dryer on video calls",
        "buy it again | buy another one | stick with this brand",
        "I use it for work and gaming | I bought it for university | I've had it about six months"),
    "headphones": domain(
        "product",
        "these headphones | the headphones | these earbuds | the earbuds | this speaker | the soundbar | "
        "the wireless earbuds | this headset",
        "the sound | the bass | the noise cancelling | the battery | the fit | the case | the microphone | "
        "the connection | the controls | the padding",
        "crisp | clear | punchy | comfortable | rich | loud | balanced | solid | snug | reliable",
        "tinny | muffled | uncomfortable | flimsy | quiet | muddy | unreliable | fiddly | cheap | bulky",
        "I wear them all day without any pain | the noise cancelling blocks out the whole train | "
        "they pair instantly | the battery lasts all week | "
        "they're comfy enough to sleep in | calls sound crystal clear",
        "the left earbud stopped working after a month | they keep disconnecting | they hurt my ears after an hour | "
        "the case broke the first time I dropped it | "
        "the sound cuts out every few minutes | the ear cushions are already peeling",
        "buy them again | buy another pair",
        "I use them at the gym | I bought them for my commute | I got them on sale"),
    "gadget": domain(
        "product",
        "this camera | the smartwatch | the TV | the fitness tracker | the drone | the e-reader | this printer | "
        "the router | the game console | the projector",
        "the picture | the battery | the screen | the app | the setup | the remote | the build | the sensor | "
        "the image quality | the software | the buttons",
        "sharp | bright | accurate | easy to use | sturdy | responsive | reliable | fast | intuitive",
        "blurry | laggy | flimsy | confusing | unreliable | slow | buggy | dim | inaccurate | noisy",
        "setup took two minutes | the picture is stunning | it tracks my runs perfectly | "
        "it just works out of the box",
        "it stopped turning on after a week | the app logs me out every day | it jams every few pages | "
        "the step count is wildly wrong | the connection drops every evening",
        "buy it again | buy another one | get the next model",
        "I got it as a gift | I bought it for our living room | I replaced an old one with it"),
    "shoes": domain(
        "product",
        "these shoes | this pair | this pair of boots | these trainers | these boots | these sneakers | the sandals | the running shoes | "
        "these heels | the slippers",
        "the fit | the sole | the laces | the leather | the colour | the cushioning | the size | the stitching | "
        "the grip | the insoles",
        "comfortable | stylish | sturdy | light | supportive | cosy | well made | gorgeous | durable",
        "uncomfortable | tight | stiff | cheap | flimsy | heavy | slippery | scratchy | narrow",
        "I walked ten miles in them on day one | I've worn them every day for a year | they look even better "
        "in person | my feet don't hurt anymore",
        "the sole came off after two weeks | they gave me blisters | the colour faded after one wash | "
        "the stitching came apart | they squeak with every step",
        "buy them again | order another pair | get them in another colour",
        "I ordered my usual size | I bought them for hiking | I wear them to work"),
    "clothing": domain(
        "product",
        "this jacket | the jeans | this dress | the hoodie | this coat | the shirt | the jumper | these leggings | "
        "the swimsuit | this t-shirt",
        "the fabric | the fit | the colour | the zip | the stitching | the material | the sizing | the pockets | "
        "the cut | the buttons",
        "soft | warm | flattering | comfortable | stylish | well made | cosy | breathable | durable",
        "itchy | thin | see-through | cheap | baggy | tight | scratchy | flimsy | shapeless",
        "it still looks new after twenty washes | I get compliments every time I wear it | it kept me warm in "
        "the snow | it fits like it was made for me",
        "it shrank in the first wash | the zip broke on day two | the colour ran all over my other clothes | "
        "a button fell off straight away | it looks nothing like the photos",
        "buy it again | order it in another colour | buy from them again",
        "I ordered a medium | I bought it for a wedding | I wear it most weekends"),
    "kitchen": domain(
        "product",
        "this pan | the blender | the kettle | this knife set | the coffee machine | the air fryer | the toaster | "
        "the slow cooker | this frying pan | the mixer | the pressure cooker",
        "the non-stick coating | the handle | the lid | the motor | the blades | the settings | the design | "
        "the build quality | the jug | the buttons",
        "sturdy | sharp | powerful | easy to clean | quiet | solid | handy | well made | quick | reliable",
        "flimsy | noisy | cheap | dull | wobbly | leaky | slow | fiddly | hard to clean | weak",
        "it heats up in seconds | nothing sticks to it | it crushes ice like nothing | "
        "it makes perfect toast every time | I use it every single day | "
        "it chops onions in seconds | it's still razor sharp after a year of daily use",
        "the coating peeled off after a month | the handle got so hot I burned my hand | it leaks everywhere | "
        "it smells of burning plastic | it stopped working after three uses | it rusted within weeks | "
        "it takes forever to boil | the lid never closes properly",
        "buy it again | buy another one | buy it as a gift",
        "I use it most evenings | I bought it to replace an old one | I got it for my new flat"),
    "furniture": domain(
        "product",
        "the sofa | this desk | the office chair | the mattress | the bed frame | this bookshelf | the dining table | "
        "the wardrobe | this armchair | the bunk bed",
        "the cushions | the frame | the legs | the fabric | the drawers | the assembly | the instructions | "
        "the finish | the wood | the padding",
        "comfortable | sturdy | solid | beautiful | supportive | well made | stylish | easy to assemble | cosy",
        "wobbly | flimsy | uncomfortable | cheap | lumpy | hard | scratched | creaky | saggy",
        "it went together in half an hour | it feels like it will last for decades | "
        "I sleep better than I have in years | it looks even better than in the shop | "
        "I could sit in it all day | it made my tiny flat feel bigger",
        "it wobbles every time I type | a leg snapped after a month | half the screws were missing | "
        "the instructions made no sense | it arrived with a huge scratch | it sags in the middle already | "
        "my back aches after sitting in it | the cushions went flat in a month",
        "buy it again | order from them again | buy the matching one",
        "it took two of us to carry it upstairs | I assembled it on my own | it's in our spare room"),
    "appliance": domain(
        "product",
        "the vacuum | the washing machine | the fridge | the robot vacuum | the hair dryer | the dishwasher | "
        "this heater | the dehumidifier | the electric toothbrush",
        "the suction | the motor | the battery | the filter | the noise | the app | the controls | the design | "
        "the settings | the attachments",
        "powerful | quiet | efficient | reliable | handy | easy to use | light | effective | smart",
        "noisy | weak | heavy | flimsy | unreliable | leaky | clunky | loud | fiddly",
        "the floors have never been this clean | it runs so quietly I forget it's on | "
        "it pays for itself in energy savings | the battery lasts for the whole house | "
        "it picks up every bit of dog hair | it empties itself",
        "it gets stuck under the sofa every day | it leaked all over the kitchen floor | "
        "the filter clogs after one use | it broke the day the warranty ran out | "
        "it's so loud the neighbours complained | the battery dies halfway through one room",
        "buy it again | buy another one | stick with this brand",
        "we have a big house with two dogs | I bought it in the January sales | it replaced a ten-year-old one"),
    "app": domain(
        "software",
        "this app | the app | the new update | the banking app | this fitness app | the language app | "
        "the dating app | the food delivery app | this meditation app | the weather app",
        "the interface | the design | the notifications | the layout | the features | the ads | the login | "
        "the search | the subscription | the latest update",
        "intuitive | clean | fast | handy | simple | smooth | polished | useful | reliable | well designed",
        "buggy | slow | confusing | cluttered | glitchy | clunky | annoying | unreliable | laggy",
        "it does exactly what I need | I use it every single day | it syncs across all my devices | "
        "it has made my mornings so much easier | "
        "it finally helped me stick to a routine | the new update fixed every bug I had",
        "it crashes every time I open it | it drains my battery | it logs me out constantly | "
        "there's an ad every thirty seconds | the update deleted all my data | they charge for basic features | "
        "every update makes it worse | it forgets my settings every time",
        "keep using it | renew my subscription | use it again",
        "I downloaded it last week | a friend sent me an invite | I use it on my tablet"),
    "software": domain(
        "software",
        "this software | the program | the photo editor | the antivirus | the accounting software | "
        "the video editor | the new version | the website | this plugin | the browser",
        "the interface | the support | the documentation | the performance | the installer | the updates | "
        "the licence | the features | the menus | the export",
        "powerful | intuitive | stable | fast | clean | flexible | reliable | well documented | easy to use",
        "buggy | bloated | slow | clunky | confusing | unstable | outdated | unintuitive | sluggish",
        "it saves me hours every week | it just works | I learned it in an afternoon | "
        "it handles huge files without slowing down | "
        "they fixed my bug report within a week | it installed in a minute",
        "it crashed and I lost a day of work | every update breaks something | it's impossible to cancel | "
        "it slows my whole computer down | the export has been broken for months | "
        "it freezes whenever I open a big file | support just sent me a link to the manual",
        "renew my licence | keep using it | buy the next version",
        "we use it at work | I switched from a competitor | I'm on the free plan"),
    "game": domain(
        "media",
        "this game | the game | the sequel | the new expansion | the remaster | this puzzle game | "
        "the board game | the multiplayer mode | this RPG",
        "the graphics | the story | the gameplay | the controls | the soundtrack | the levels | the characters | "
        "the multiplayer | the boss fights | the world | the puzzles | the rules",
        "addictive | gorgeous | fun | challenging | immersive | polished | clever | satisfying | epic | smooth",
        "buggy | repetitive | boring | clunky | unfair | grindy | short | confusing | laggy | unbalanced",
        "I've sunk a hundred hours into it | I lost track of time every night | every level feels fresh | "
        "we play it every game night | "
        "I lose whole weekends to it | the side quests are as good as the main story",
        "it crashes every hour | the servers are always down | you have to pay to progress | "
        "it's the same three missions over and over | I finished it in four hours | "
        "the last boss is impossible without paying | the servers crash every weekend",
        "play it again | buy the next one | replay it",
        "I played it on my console | I got it on sale | I played it with my kids"),
    "delivery": domain(
        "service",
        "the delivery | the courier | my order | the parcel | the delivery service | the food delivery | "
        "the takeaway | this online shop | the grocery delivery",
        "the driver | the packaging | the tracking | the delivery time | the food | the order | the refund | "
        "the communication | the box",
        "fast | quick | careful | punctual | friendly | well packed | speedy | reliable",
        "late | slow | careless | damaged | cold | unreliable | rude | soggy",
        "it arrived the next morning | the driver brought it right to my door | "
        "everything was packed perfectly | the food was still piping hot | "
        "they texted me an exact time slot | the driver even waited while I checked it",
        "the parcel was left in the rain | it arrived a week late | half my order was missing | "
        "the box was crushed | the driver never showed up | they delivered it to the wrong address | "
        "my pizza arrived stone cold | the parcel was thrown over the fence",
        "order from them again | use them again | order again",
        "I ordered it on a Tuesday | I needed it for a birthday | I ordered dinner for four"),
    "support": domain(
        "service",
        "customer service | the support team | the help desk | the call centre | their customer support | "
        "the manager | the agent I spoke to | the live chat",
        "the response | the staff | the agent | the wait time | the refund process | the follow-up | "
        "the phone line | the email replies",
        "helpful | friendly | quick | patient | polite | professional | responsive | efficient | kind",
        "unhelpful | rude | slow | useless | dismissive | clueless | unresponsive | robotic",
        "they sorted it out in ten minutes | they sent a replacement the same day | "
        "the agent called me back as promised | they refunded me without any fuss | "
        "they called back within the hour | the agent stayed on the line until it worked",
        "I was on hold for two hours | they hung up on me | nobody ever answered my emails | "
        "they kept passing me between departments | I'm still waiting for my refund | "
        "they closed my ticket without fixing anything | they read from a script and ignored my question",
        "deal with them again | shop with them again | call them again",
        "I called about a missing refund | I had a question about my bill | I contacted them through the app"),
    "course": domain(
        "service",
        "this course | the class | the workshop | the online course | the tutorial | the bootcamp | "
        "the language course | the cooking class | this lecture series | the driving lessons",
        "the teacher | the instructor | the lessons | the material | the exercises | the videos | the pace | "
        "the homework | the feedback | the tutor",
        "clear | engaging | practical | well structured | inspiring | patient | helpful | useful | fun | "
        "knowledgeable",
        "boring | confusing | disorganised | outdated | rushed | dull | shallow | overpriced | repetitive",
        "I learned more in a week than in a year on my own | I passed my exam first time | "
        "the teacher answered every question | I use what I learned every day | "
        "the exercises actually made it stick | she made a dry subject fun",
        "the teacher just read from the slides | half the videos didn't work | "
        "nobody ever replied to my questions | I could have learned it all from a free video | "
        "the videos were recorded years ago | the instructor never turned his camera on",
        "take another course with them | sign up again | take the next level",
        "I took it over the summer | my company paid for it | I did it in the evenings after work"),
    "gym": domain(
        "place",
        "this gym | the gym | the fitness studio | the yoga studio | the spin class | the leisure centre | "
        "the climbing gym | the swimming pool",
        "the equipment | the trainers | the classes | the changing rooms | the showers | the staff | "
        "the membership | the instructor | the opening hours | the machines",
        "clean | friendly | modern | motivating | spacious | well equipped | supportive | great value",
        "dirty | crowded | outdated | rude | overpriced | broken | smelly | cramped | pushy",
        "the trainers actually correct your form | there's never a queue for the machines | "
        "I've never felt fitter | the classes are always full of energy | "
        "my coach pushed me just the right amount | it's open round the clock",
        "half the machines are out of order | they made it impossible to cancel my membership | "
        "the showers are always cold | it's packed every evening | "
        "nobody wipes down the machines | the instructor chatted with friends instead of coaching",
        "renew my membership | keep going | sign up again",
        "I go three times a week | I joined in January | I go before work"),
    "salon": domain(
        "place",
        "this salon | the barber | the hairdresser | the spa | the nail salon | the massage place | "
        "the beauty salon | the tattoo studio",
        "the haircut | the stylist | the colour | the massage | the staff | the nails | the prices | "
        "the booking | the treatment | the facial",
        "relaxing | skilled | friendly | professional | talented | gentle | welcoming | spotless",
        "rushed | rude | careless | overpriced | dirty | sloppy | rough | unprofessional",
        "she cut my hair exactly how I wanted | I walked out feeling like a new person | "
        "my nails lasted three weeks without chipping | the massage sorted out my back | "
        "it's the best haircut I've had in years | they remembered exactly how I like it",
        "they cut off way more than I asked | my colour came out orange | they kept me waiting forty minutes | "
        "my nails chipped the next day | they burned my scalp | "
        "I had to fix it myself at home | she ignored the photo I showed her",
        "go back | book again | come back",
        "I booked a cut and colour | I went before a wedding | it was my first visit"),
    "attraction": domain(
        "place",
        "the museum | the zoo | the theme park | the aquarium | the gallery | the exhibition | "
        "the escape room | the water park | the castle tour | the cinema",
        "the exhibits | the rides | the queues | the staff | the tickets | the cafe | the animals | "
        "the displays | the audio guide | the facilities",
        "fascinating | fun | well kept | amazing | educational | spotless | thrilling | beautiful | friendly",
        "overpriced | crowded | boring | dirty | tired | disappointing | chaotic | cramped",
        "the kids didn't want to leave | we spent the whole day there | every room had something new | "
        "the queues moved quickly",
        "we queued two hours for one ride | half of it was closed | the animals looked miserable | "
        "we saw everything in twenty minutes",
        "go again | come back | visit again",
        "we went on a rainy Saturday | we took the kids in the school holidays | we bought tickets online"),
    "vehicle": domain(
        "product",
        "this car | the bike | the e-scooter | the rental car | the electric bike | this stroller | the car seat",
        "the brakes | the ride | the seats | the battery | the gears | the handling | the boot | the engine | "
        "the wheels | the suspension",
        "smooth | comfortable | fast | reliable | light | sturdy | nippy | quiet | spacious",
        "noisy | heavy | unreliable | uncomfortable | slow | wobbly | cramped | thirsty",
        "it handles like a dream | the battery got me across town and back | it folds in seconds | "
        "it's never let me down",
        "the chain came off on my first ride | it broke down on the motorway | the battery died after ten minutes | "
        "the rental desk charged us for a scratch we didn't make",
        "buy it again | rent from them again | get another one",
        "I use it for my commute | we rented it for a week | I bought it second hand"),
    "home": domain(
        "service",
        "the plumber | the cleaners | the electrician | the movers | the builders | the cleaning company | "
        "the gardener | the painter | the removal company | the landlord",
        "the work | the price | the quote | the team | the job | the finish | the timing | the communication",
        "reliable | professional | tidy | punctual | friendly | careful | fair | efficient | honest",
        "late | sloppy | careless | rude | overpriced | unreliable | messy | dishonest",
        "they turned up exactly on time | they left the place cleaner than they found it | "
        "the job took half the time they quoted | they fixed it on the first visit | "
        "they explained every step | the final bill was lower than they said",
        "they never showed up | they broke a vase and denied it | the quote doubled halfway through | "
        "they left a huge mess behind | the leak was back the next day | "
        "they charged double the quote | they vanished halfway through the job",
        "use them again | hire them again | call them again",
        "we hired them for the move | they came to fix a leak | we booked them through a friend"),
    "beauty": domain(
        "product",
        "this moisturiser | the shampoo | the perfume | this sunscreen | the face cream | the mascara | "
        "the serum | this lipstick | the conditioner | the face wash",
        "the smell | the texture | the packaging | the scent | the formula | the pump | the colour | the results",
        "gentle | lovely | light | soothing | long-lasting | silky | effective | nourishing | fresh",
        "greasy | sticky | harsh | strong | drying | patchy | cheap | watery | clumpy",
        "my skin has never looked better | a little goes a long way | the scent lasts all day | "
        "my hair feels so soft",
        "it made me break out | it burned my skin | the pump broke after a week | "
        "it smells like chemicals | it did absolutely nothing",
        "buy it again | repurchase it | order another bottle",
        "I have sensitive skin | I got it as a gift | I've used it for a month"),
    "pet": domain(
        "product",
        "this dog food | the cat litter | the dog bed | this scratching post | the pet carrier | the dog toy | "
        "the fish tank",
        "the quality | the size | the material | the smell | the price | the stitching",
        "sturdy | cosy | durable | well made | great value | soft",
        "flimsy | cheap | smelly | tiny | overpriced | scratchy",
        "my dog loves it | the cat sleeps in it every night | it survived my puppy | "
        "my cat finally eats without fuss",
        "my dog destroyed it in ten minutes | the cat won't go near it | it fell apart in a week | "
        "it made my dog sick",
        "buy it again | order it again",
        "we have two cats | I bought it for our puppy"),
}

# Opinion words that fit any aspect. The mild ones carry the weaker half of a contrast ("a bit pricey, but ...").
POS_ADJ = items(
    "great | excellent | amazing | fantastic | wonderful | superb | brilliant | outstanding | awesome | terrific | "
    "fabulous | lovely | perfect | incredible | phenomenal | exceptional | impressive | top-notch | first-class | "
    "stellar | spot on | flawless | marvellous | splendid | delightful | solid | good | nice | great value | "
    "excellent value | epic | fab | magnificent | sublime | exquisite | divine | glorious | faultless | "
    "second to none | out of this world | top notch | five-star | remarkable | wicked | ace | cracking")
NEG_ADJ = items(
    "terrible | awful | horrible | dreadful | appalling | atrocious | abysmal | horrendous | lousy | poor | bad | "
    "crap | crappy | rubbish | pathetic | shoddy | subpar | mediocre | disappointing | underwhelming | "
    "unacceptable | useless | hopeless | dire | sloppy | shocking | woeful | laughable | frustrating | annoying | "
    "sad | meh | so-so | forgettable | overrated | overpriced | a joke | a mess | a disaster | a letdown | "
    "garbage | trash | disgraceful | pitiful | naff | second-rate | a nightmare | painful")
# The words reviews use most, drawn more often than the rest, so that plain "good" and "bad" outnumber their
# negations ("not good", "not bad at all") as they do in real reviews.
POS_COMMON = items("good | great | nice | amazing | excellent | perfect | lovely | awesome | fantastic | wonderful | "
                   "brilliant | superb | solid | impressive | fun")
NEG_COMMON = items("bad | terrible | awful | boring | disappointing | horrible | poor | mediocre | rubbish | useless | "
                   "crap | expensive | cheap | slow | overpriced | dreadful")
COMMON_INTENSIFIERS = items("really | so | very | super | absolutely | incredibly | pretty | quite")
POS_MILD = items(
    "decent | nice enough | fine | okay | pleasant | alright | good enough | fair | passable | "
    "perfectly fine | reasonable | acceptable | serviceable | adequate")
NEG_MILD = items(
    "pricey | expensive | slow | basic | plain | dated | short | overpriced | underwhelming | average | "
    "rough around the edges | hit and miss | inconsistent | samey | predictable | forgettable")
# Generic faults whose negation is praise ("not bad at all", "never boring"), most used first.
NEG_NEGATABLE = items(
    "bad | disappointing | boring | a problem | overpriced | expensive | an issue | a hassle | complicated | "
    "a letdown | too busy | too long | terrible | awful")

INTENSIFIERS = items(
    "really | so | very | super | incredibly | absolutely | extremely | truly | genuinely | seriously | "
    "ridiculously | insanely | properly | unbelievably | remarkably | exceptionally | totally | utterly | "
    "just | beyond | downright | pretty | quite | honestly | incredibly")
HEDGES = items("a bit | a little | slightly | somewhat | kind of | kinda | rather | a tad | a touch | a little too")

# Whole verdicts about the thing: "{thing} {verdict}". Pos and neg each use negation in about the same share.
POS_VERDICTS = items(
    "is worth every penny | was money well spent | exceeded my expectations | blew me away | made my day | "
    "did not disappoint | didn't disappoint | lived up to the hype | is a must-have | is a hidden gem | "
    "is the real deal | is a steal | is great value for money | hit the spot | was a dream | is a game changer | "
    "ticks all the boxes | is hard to beat | was a pleasant surprise | never lets me down | was a joy | "
    "knocked it out of the park | was well worth the wait | was a breath of fresh air | works like a charm | "
    "is the best I've tried | is a keeper | is worth it | is totally worth it | is worth the hype | "
    "is hard to fault | is easy to recommend | is easy to love | does exactly what it says | does the job | "
    "works as advertised | actually works | just works | works perfectly | never fails to impress | "
    "is a bargain | pays for itself | "
    "never disappoints | can't be beaten | is in a league of its own | is the best money I've spent all year | "
    "gets better every time | is everything I hoped for | was better than I expected | "
    "was way better than the reviews said | was not bad at all | wasn't bad at all | is nothing short of amazing | "
    "has no real flaws | couldn't have been better | is every bit as good as they say | beat all my expectations | "
    "was the highlight of our year | is a total bargain | deserves every award")
NEG_VERDICTS = items(
    "is a waste of money | was a total ripoff | was a complete waste of time | let me down | fell apart | "
    "fell flat | was a huge letdown | didn't live up to the hype | is not worth it | is not worth the money | "
    "isn't worth the price | was overpriced | was a joke | was a nightmare | is a scam | missed the mark | "
    "was a disaster | went downhill | ruined our evening | is a rip-off | was a mess | is not worth the hassle | "
    "left a lot to be desired | falls short | was a letdown | is garbage | drove me crazy | is just meh | "
    "was nothing special | was forgettable | was a massive disappointment | was a waste of time | "
    "was worse than I expected | is nowhere near as good as they say | was not what I expected | "
    "isn't what it used to be | was a total waste | is not fit for purpose | was a big mistake | "
    "is the worst I've tried | was an absolute shambles | fell short of my expectations | "
    "is a complete scam | has gone downhill fast | was a let-down from start to finish | isn't worth a penny | "
    "wasn't worth the wait | is overhyped | is hard to recommend | "
    "is hard to love | is hard to enjoy | barely works | doesn't work | doesn't do what it says | keeps breaking | "
    "works half the time | never worked properly | stopped working | is more trouble than it's worth | "
    "feels cheap | isn't worth a second look | is a money pit")

# Complete short verdicts, said on their own or around another sentence.
POS_SHORT = items(
    "Highly recommend | Would go again | Worth every penny | Love it | Loved it | Ten out of ten | Five stars | "
    "Two thumbs up | Absolutely brilliant | Can't fault it | No complaints | Money well spent | "
    "Best decision ever | So good | Would buy again | Top notch | Cannot recommend enough | A real gem | "
    "Perfect | Brilliant value | Exactly what I needed | 10/10 | 5/5 | A+ | Love love love | Just wow | "
    "Obsessed | Chef's kiss | Winner | Great stuff | Amazing | Happy customer | No regrets | Nailed it | "
    "Impressed | Superb | Fantastic | Highly recommended | Would recommend | Five stars from me | "
    "Totally worth it | Couldn't be happier | Not bad at all | Can't complain | Never disappoints | No notes | "
    "Already ordered another | Going back next week | Bought two more | Keeping it | Back for more | "
    "Instant favourite | Sold | Nothing to complain about | No issues at all | Still going strong")
NEG_SHORT = items(
    "Total ripoff | Waste of money | Never again | Meh | Avoid | Save your money | One star | Zero stars | "
    "Do not buy | What a letdown | Huge disappointment | Not worth it | Complete garbage | Stay away | Nope | "
    "Not impressed | Utter rubbish | So disappointing | Returned it | 1/10 | 0/5 | 1/5 | Avoid at all costs | "
    "Big mistake | Awful | Terrible | Disappointed | Rubbish | Steer clear | Buyer beware | Not recommended | "
    "Do not recommend | Very disappointed | Would not recommend | Shambles | What a joke | Not good | "
    "Nothing special | Not for me | Not again | Never disappoints? Think again | Hard pass | Gutted | "
    "Returning it | Sending it back | Refund requested | Back in the box it goes | Not going back | "
    "Cancelled | Uninstalled | Such a shame | Not good enough | Nothing but problems | Hate it | Hated it | "
    "I want every penny back | Can't recommend it | Bad, bad, bad | Just bad | Really bad")

# How one feels about it: "I {feel} {thing}".
POS_FEEL = items(
    "love | loved | adore | adored | enjoyed | really enjoyed | liked | really liked | am obsessed with | "
    "am in love with | was blown away by | was impressed by | was so impressed with | am thrilled with | "
    "am delighted with | am very happy with | was pleasantly surprised by | can't get enough of | "
    "fell in love with | have no complaints about | can't say enough good things about | "
    "was won over by | am a big fan of | highly recommend | would recommend | will always recommend | "
    "am so glad I bought | don't regret buying | have no regrets about | have nothing bad to say about | "
    "keep coming back to | can't stop talking about | was over the moon with")
NEG_FEEL = items(
    "hate | hated | can't stand | disliked | regret buying | regret booking | was disappointed by | "
    "was let down by | am fed up with | am so done with | was annoyed by | was really frustrated with | "
    "am not happy with | am unhappy with | was underwhelmed by | have had enough of | wasted my money on | "
    "wouldn't recommend | can't recommend | would never recommend | don't like | didn't like | "
    "didn't enjoy | did not enjoy | am not a fan of | was not impressed by | wasn't impressed with | "
    "regret every penny I spent on | am sorry I bought | have nothing good to say about | "
    "am done with | gave up on | was embarrassed by | lost all faith in")

# First-person experiences, by the kind of thing reviewed ("{it}" is its pronoun).
POS_EXPERIENCES = {
    "place": items(
        "we'll definitely be back | we stayed much longer than planned | I've already booked my next visit | "
        "we didn't want to leave | I tell everyone about it | we go there every week now | "
        "I left with a huge smile on my face | we felt so welcome | we're already planning our next trip back | "
        "I can't wait to go back | it's our new favourite spot | I couldn't be happier"),
    "product": items(
        "I use {it} every day | I bought a second one for my sister | I'd buy {it} again in a heartbeat | "
        "{it} still works like new after a year | I can't imagine life without {it} now | "
        "I've recommended {it} to all my friends | I'm so glad I bought {it} | I couldn't be happier with {it} | "
        "I have zero regrets | I wish I'd bought {it} sooner | {it} has never let me down"),
    "media": items(
        "I couldn't stop thinking about it | I've recommended it to everyone I know | I'd happily watch it again | "
        "I was hooked from the first minute | I laughed until I cried | it left me speechless | "
        "I've already told all my friends | it's one of my all-time favourites | I was smiling the whole way through | "
        "I can't wait for the next one"),
    "service": items(
        "I'll definitely use them again | they went above and beyond | they sorted everything out in minutes | "
        "I've already recommended them to my neighbours | I couldn't have asked for more | "
        "they made the whole thing painless | I've never had a problem with them | they exceeded every expectation"),
    "software": items(
        "I use {it} every day | {it} has saved me so much time | I can't imagine working without {it} | "
        "I happily pay for the premium version | I've recommended {it} to my whole team | "
        "I haven't had a single crash | {it} just works"),
}
NEG_EXPERIENCES = {
    "place": items(
        "I can't believe we paid for that | we walked out | we left early | we won't be back | I complained to the manager | "
        "I couldn't wait to leave | we asked for a refund | we'll be going elsewhere from now on | "
        "I wouldn't send my worst enemy there | we left hungry and annoyed | I wanted to go home after ten minutes | "
        "I'll never set foot in there again | we regretted going"),
    "product": items(
        "I can't get {it} to work | I can't believe I paid for {it} | I returned {it} after a week | {it} broke within a month | I asked for a refund | "
        "{it} went straight back in the box | I'm already looking for a replacement | "
        "{it}'s gathering dust in a drawer | I want my money back | I regret buying {it} | "
        "I wish I'd read the reviews first | I ended up throwing {it} away | {it} stopped working after two days"),
    "media": items(
        "I gave up halfway through | I nearly fell asleep | I want those hours back | I couldn't finish it | "
        "I was bored out of my mind | I kept checking the time | I wouldn't watch it again if you paid me | "
        "I regret wasting my evening on it | I forgot about it the next day"),
    "service": items(
        "I'll be taking my business elsewhere | I'm still waiting for a refund | I had to call five times | "
        "nobody ever got back to me | I've never been treated so badly | I'm filing a complaint | "
        "I'll never use them again | they ruined the whole experience"),
    "software": items(
        "I can't get {it} to work | I can't believe I paid for {it} | I uninstalled {it} after a day | I cancelled my subscription | I switched to a competitor | "
        "I lost hours of work because of {it} | I want a refund | I've given up on {it} | "
        "{it} crashes more than it works"),
}

# Sentence openers: the neutral ones start reviews of either label; the others lean one way, as in real reviews.
NEUTRAL_OPENERS = items(
    "Honestly, | Overall, | To be honest, | I have to say, | Well, | So, | Okay so | All in all, | "
    "Long story short, | In short, | Not gonna lie, | Tbh, | Let me tell you, | Update: | Quick review: | "
    "First impressions: | Wow, | Oh man, | Right, | Just so you know, | Bottom line: | In all honesty, | "
    "Full review: | Three weeks in: | Verdict: | My two cents: | Where do I start?")
POS_OPENERS = items(
    "Yes! | Finally, | Phew, | What a find! | Oh wow, | Bravo! | Happy customer here. | Amazing news: | "
    "Thrilled to say | Great news, | Pleasantly surprised! | Wow wow wow. | Hooray, | Good job, | Thank you!")
NEG_OPENERS = items(
    "Ugh. | Oh dear. | Yikes. | Sigh. | Oof. | Buyer beware: | Warning: | Sadly, | Unfortunately, | "
    "Disappointed. | Where do I even begin. | What a shame. | Well, that was a mistake. | Big mistake. | Seriously?")
POS_CLOSERS = items(
    "Five stars. | 5/5. | 10/10. | Highly recommended. | Would recommend. | Thanks! | Love it. | :) | "
    "Keep it up! | A+. | Can't wait for more. | Go, you won't regret it. | Thank you so much! | Bravo. | :D")
NEG_CLOSERS = items(
    "One star. | 1/5. | 0/10. | Avoid. | Do not recommend. | Never again. | :( | Buyer beware. | Shame. | "
    "Save your money. | What a shame. | Not happy. | Stay away. | Just no. | Lesson learned.")

# Neutral things said of any visit, purchase or show, so that such words carry no label.
NEUTRAL_CONTEXT = items(
    "my friend recommended it | I read a lot of reviews first | it was my first time | "
    "I had been meaning to try it for ages | I went in with no expectations | we decided on a whim | "
    "I saw it advertised everywhere | my partner picked it | it was on sale | I paid full price | "
    "I've been a customer for years | a colleague told me about it | I went back for a second time | "
    "it was a gift")

# Consequences that make a strong verdict ("the service was so slow that we left"), by kind; "any" fits all.
POS_CONSEQUENCES = {
    "any": items("I told all my friends | I was grinning for hours | I can't stop recommending it | "
                 "I forgot about everything else"),
    "place": items("we came back the next day | we booked again on the spot | we didn't want to leave"),
    "product": items("I bought a second one | I ordered one for my brother | I use it every day now"),
    "media": items("I didn't want it to end | I lost track of time | I watched it twice in a row"),
    "service": items("I booked them again on the spot | I left them a glowing review"),
    "software": items("I paid for the full version | I moved my whole team onto it"),
}
NEG_CONSEQUENCES = {
    "any": items("I asked for a refund | I complained | I gave up | I wanted to cry | I wrote to head office"),
    "place": items("we left | we walked out | we never went back | we left before dessert"),
    "product": items("I sent it back | I returned it the next day | I threw it in the bin"),
    "media": items("I switched it off | I nearly fell asleep | I walked out"),
    "service": items("I cancelled everything | I went to a competitor"),
    "software": items("I uninstalled it | I cancelled my subscription"),
}

# Verdicts as fragments, for the stronger half of a short contrast ("a bit pricey, but worth it").
POS_FRAGMENTS = items(
    "worth it | worth every penny | totally worth it | still a great buy | still brilliant | "
    "worth the money | absolutely worth it | still a great night | still highly recommended | still love it | "
    "still a winner | worth the wait | would still go again | still five stars from me")
NEG_FRAGMENTS = items(
    "not worth it | not worth the money | still a waste of money | still not worth it | still a letdown | "
    "still disappointing | a total ripoff | still wouldn't go back | never again | still one star | "
    "not worth the hassle | still a rip-off | still a no from me | would not buy again")

# Value for money, said of the thing ("{s} {be} ...").
POS_VALUE = items(
    "great value for money | worth the price | a bargain at this price | cheap and cheerful | "
    "good bang for your buck | great for the price | not bad for the price | decent for the money | "
    "excellent value | a steal for what you get | worth twice what I paid | fairly priced | "
    "very reasonably priced | better than ones that cost twice as much")
NEG_VALUE = items(
    "way too expensive for what you get | overpriced for what it is | not worth it at that price | "
    "way overpriced | a lot of money for very little | far too pricey for what it is | a rip-off at that price | "
    "not worth half the price | daylight robbery | poor value for money | cheap, and it feels cheap | "
    "twice the price of better ones | cheaply made | so expensive | ridiculously expensive | too expensive | "
    "expensive for what it is | not worth a penny | not worth what I paid")

# What it is full of, or lacks: "{s} {be} full of flavour", "{s} lacks charm".
QUALITIES = items(
    "flavour | charm | character | personality | heart | energy | life | depth | originality | substance | "
    "polish | soul | atmosphere | imagination | warmth | style | humour | detail | care")

# Degree and frequency: "{s} {be} always {pos}"; "{s} {be} barely {pos}" and "{s} {be} way too {neg}" fault it.
ALWAYS = items("always | consistently | reliably | still | usually")
BARELY = items("barely | hardly | rarely | never | not even")
TOO = items("way too | far too | much too | too | just too")
# Faint praise and faint faults: said plainly ("nothing fancy, and overpriced") and conceded before the other
# verdict ("nothing fancy, but worth it", "looks great, but not worth the money").
MILD_FAULTS = items(
    "nothing fancy | no frills | pretty basic | not the cheapest | a bit of a wait | simple | not perfect | "
    "not cheap | far from perfect | a little rough around the edges | small | a bit plain | not for everyone | "
    "an acquired taste | a bit of a gamble")
MILD_PRAISE = items(
    "looks great | great idea | nice enough | cheap | pretty packaging | good on paper | friendly staff | "
    "nice design | fine | okay | decent start | great location | looks nice | looked great online | "
    "great trailer | lovely photos | nice to look at | easy to set up | good reviews")

# Said with a negation, and praise all the same (and the other way round): "I couldn't put it down",
# "nobody said hello". Negation words must not mark either label.
POS_NEGATED = items(
    "I couldn't put it down | I couldn't stop smiling | I couldn't stop laughing | I couldn't ask for more | "
    "I couldn't be happier | I can't fault it | I can't get enough of it | I didn't want it to end | "
    "I never wanted to leave | I have nothing bad to say | "
    "nothing went wrong | I haven't had a single problem | "
    "I don't regret it for a second | it never gets old | I wasn't disappointed | I was not disappointed | "
    "it didn't let me down once | there's nothing I'd change | I didn't have to wait at all | "
    "it didn't take long at all | I can't stop recommending it | I never get bored of it | "
    "I haven't stopped using it | none of the problems other reviewers mentioned | no complaints whatsoever | "
    "not a single thing went wrong | I didn't hear a single complaint from the kids | "
    "I couldn't have wished for better | I don't know how I lived without it")
NEG_NEGATED = items(
    "nobody said hello | they never apologised | no one came to check on us | they never called back | "
    "it never arrived | it never worked properly | nobody answered | I lost track of who was who | "
    "I couldn't hear a thing | I couldn't get comfortable | I couldn't sleep | it didn't fit | "
    "I didn't laugh once | I didn't enjoy a single minute | nothing worked | not one thing went right | "
    "nobody told us anything | I couldn't wait for it to end | they didn't even say sorry | "
    "I never got my refund | I never heard back | it didn't even last a month | "
    "I didn't expect it to be this bad | I never want to go through that again | it doesn't hold a charge | "
    "I can't get it to work | nobody seemed to care | it doesn't do half of what it promises | "
    "I couldn't wait to leave | not once did it work properly | they never once said thank you | "
    "they didn't listen to a word I said | everything that could go wrong did | they sent the wrong size | "
    "I can't use it for more than ten minutes | I can't get a straight answer from anyone | "
    "I couldn't hear myself think | we couldn't get a table for an hour | I can't even open it | "
    "it's already falling apart | everything went wrong | we had to wait forty minutes | "
    "they cancelled without any explanation | it broke without warning | I can't recommend it to anyone | "
    "it wasn't worth the wait | I couldn't get anyone to help | they couldn't care less | "
    "I can't believe how bad it was | I wasn't impressed at all | it isn't worth the hassle")

# Ratings: "Four stars.", "2/10".
POS_RATINGS = items("Four stars | 4/5 | 8/10 | 9/10 | Four and a half stars | A solid four stars | 4.5/5 | Five stars | "
                    "Full marks | 9 out of 10")
NEG_RATINGS = items("Two stars | 2/5 | 3/10 | 2/10 | Two stars, no more | "
                    "One star, only because zero isn't an option | 1 star | Half a star | 1 out of 10 | "
                    "Two stars at most")

# How a review turns: "it started slow, but by the end ..."; "at first ..., but after a month ...".
TURNS = items("by the end | after a week | after a month | halfway through | by day two | "
              "after a few days | within a week | by the second visit | in the end | after a while | "
              "once I got used to it | a month later")

# What it keeps doing: "{s} keeps {habit}".
POS_HABITS = items(
    "getting better | surprising me | impressing me | making me smile | blowing me away | getting better with age | "
    "winning me over | delivering | exceeding my expectations | bringing me back")
NEG_HABITS = items(
    "breaking | crashing | freezing | getting worse | falling apart | letting me down | going wrong | "
    "disconnecting | failing | breaking things | changing for the worse | logging me out | acting up | "
    "giving me trouble | disappointing me")

# Tails that strengthen a fact in either label: "it runs smoothly even after a year", "it broke after just a week".
EVEN_TAILS = items(
    "even after a year | even in the rain | even on a busy Saturday | even with the kids | "
    "even on the cheapest plan | every single time | all the time | every time | "
    "after just a week | within days | from day one | right from the start | time after time | "
    "and that's saying something | day after day")

# Everyday facts of a good or a bad experience, by kind ("any" fits all): said of it without an opinion word.
GOOD_FACTS = {
    "any": items(
        "it made my week | it's a joy to use | it was a breeze from start to finish | it feels premium | "
        "it's exactly as described | it was even better in person | it's become a daily habit | it works a treat | "
        "everything was spot on | it ticks every box for me | it's miles better than the last one | "
        "it was a lovely surprise | it put a smile on my face | it's built to last | it was everything I wanted | "
        "it's streets ahead of anything else | it's been a game changer for me | it was an absolute delight | "
        "it's held up really well | every detail was thought through | it's clear they really care | "
        "it was a hit with everyone | the kids loved it | my partner was impressed too | it felt like a treat | "
        "it's honestly flawless | it's a great little find | it's worth every minute | it made life so much easier | "
        "it did exactly what I hoped | it earned its place in my routine | it was worth the money and then some | I'd pay double for it | it surprised me in the best way | it got better the more I used it | I found myself smiling the whole time | it's the highlight of my week | it took all the stress away | it was over far too quickly | it's still as good as on day one | I've had nothing but compliments | everyone I showed it to wants one | it's exactly what it says on the tin"),
    "place": items(
        "the service was quick and warm | we felt looked after the whole time | the place was spotless | "
        "it had a lovely buzz | the staff couldn't do enough for us | there was plenty of space | "
        "it's worth the trip across town | we were seated straight away | it felt like a home from home | "
        "they greeted us with a big smile | they went the extra mile for my mum's birthday | the food melted in the mouth | everything was cooked to perfection | I slept like a baby | we never waited more than a few minutes | the bread came fresh out of the oven | it was quiet enough to hear each other | they remembered us from last year | they found us a table even though we hadn't booked"),
    "product": items(
        "it was easy to set up | it feels solid in the hand | it arrived well packaged | the build quality is superb | "
        "it's lighter than I expected | it fits perfectly | the instructions were clear | it still looks brand new | "
        "it was worth the upgrade | it arrived a day early | "
        "it heats up in no time | it charges overnight and lasts all day | it fits like a glove | it's like walking on clouds | it holds a charge for days | it's whisper quiet | it cleans up in seconds | it survived a week of camping | it folds flat for storage | it feels sturdy and well balanced | the colour is even nicer in real life | it shipped the next day"),
    "media": items(
        "the story pulled me in | the characters are so well drawn | it had me laughing out loud | "
        "I was gripped the whole way | it's beautifully made | it's funny and moving at the same time | "
        "it left me wanting more | it's smart without being smug | "
        "it made me laugh out loud more than once | the last act really sticks the landing | it feels fresh | the time flew by | the dialogue crackles | it made me want to call my parents | the performances are pitch perfect | it rewards a second viewing | the music gave me goosebumps"),
    "service": items(
        "they were quick to respond | they kept me updated the whole time | everything was sorted within a day | "
        "they were honest about the cost | they went out of their way to help | it was so easy to book | "
        "they turned up early | "
        "they explained everything in plain English | they double-checked everything | they arrived on the dot | they sorted it out in one call | they followed up the next day to check | they took their time and did it right | they were upfront about every cost | they treated us like family"),
    "software": items(
        "it's fast and never crashes | the interface is clean and simple | setup took two minutes | "
        "it syncs perfectly | it's so easy to find everything | the updates keep making it better | "
        "it loads instantly | it hasn't crashed once | it runs smoothly on my old laptop | it backs everything up automatically | the new version is much snappier | it does everything I need without the clutter"),
}
BAD_FACTS = {
    "any": items(
        "it's a pain to use | it was a nightmare from start to finish | it feels cheap and plasticky | "
        "it's nothing like the description | it was worse in person | it's on its last legs already | "
        "nothing about it works the way it should | it ruined my whole day | it's miles worse than the last one | "
        "it was a complete headache | it felt like a scam | it's clearly been rushed | corners have been cut everywhere | "
        "it's an absolute mess | it left a bad taste | nobody seems to care | it's a step backwards | "
        "it went downhill quickly | it was a struggle from day one | it fell to pieces | the quality has really dropped | "
        "it's barely usable | the kids hated it | my partner hated it too | it made everything harder | "
        "it's full of problems | it's frustrating every single time | it was a disappointment from the start | "
        "it broke the first time I used it | it was over in five minutes and not in a good way | I want a refund and an apology | it made me wish I'd stayed at home | it's been nothing but trouble | I've regretted it ever since | it's the last time I'll fall for the hype | it was a chore from start to end | it gave me a headache | everyone I showed it to laughed | it looked nothing like the pictures | it got worse the more I used it | it took ages and still went wrong"),
    "place": items(
        "the place was filthy | we were ignored for ages | it was packed and chaotic | "
        "the staff looked like they didn't want to be there | it smelled damp | it was freezing inside | "
        "the toilets were a disgrace | we felt rushed the whole time | it's gone downhill since the new owners | "
        "the food was swimming in oil | everything tasted of nothing | my steak came out grey and chewy | I tossed and turned all night | the staff talked down to us | we waited ages just to order | they forgot half our order | the music was deafening | there was a weird smell the whole time | the walls were paper thin | they seated us right next to the toilets"),
    "product": items(
        "it arrived broken | the instructions were useless | it stopped working after a few uses | "
        "it doesn't fit properly | it's much smaller than it looks in the pictures | it smells like chemicals | "
        "the battery dies in no time | the paint chipped straight away | parts were missing | it arrived a week late | "
        "it rattles every time I move it | it squeaks with every step | it overheats after a few minutes | it leaks all over the counter | it pinches my toes | it lags constantly | it freezes every few minutes | it wobbles on a flat floor | the handle came off in my hand | it scratches if you look at it | the charger stopped working in a week | it takes an age to warm up"),
    "media": items(
        "the story goes nowhere | the characters are paper thin | it's painfully slow | it tries way too hard | "
        "I didn't care about anyone in it | the ending was a cop-out | it's predictable from start to finish | "
        "the jokes are lazy | "
        "it lost the plot halfway through | the last act falls apart | it feels dated | it went way over my head | the jokes are tired | it drags on and on | I didn't laugh once | the performances are wooden | it's two hours too long | it's a cash grab"),
    "service": items(
        "they never kept me updated | it took weeks to sort out | they kept cancelling | they were rude on the phone | "
        "they overcharged me | nobody takes responsibility | I was passed from person to person | "
        "booking was a nightmare | "
        "they talked down to me | they rushed the whole job | they messed up my booking | they never followed up | they turned up three hours late | they made it my problem | they charged me for things I never asked for | they kept putting me on hold"),
    "software": items(
        "it's slow and crashes constantly | the interface is a mess | it's full of ads | it drains the battery | "
        "it won't let me log in | every update breaks something new | it keeps asking me to pay | "
        "it takes forever to load | it logs me out every day | it lost all my files | it's so cluttered I can't find anything | the new version is a downgrade | it crashes whenever I save"),
}

# How it left one feeling, most used first: "I was {feeling}", "it left me {feeling}".
POS_FEELINGS = items(
    "happy | impressed | delighted | thrilled | pleased | satisfied | amazed | hooked | glad | blown away | "
    "moved | excited | relieved | grateful | over the moon | inspired | relaxed | content | speechless")
NEG_FEELINGS = items(
    "disappointed | bored | frustrated | annoyed | let down | angry | underwhelmed | unimpressed | furious | "
    "confused | cheated | ripped off | fed up | upset | gutted | uncomfortable | exhausted | embarrassed | sick")
